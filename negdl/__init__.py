"""Helpers shared by the scripts of all three parts (``neg_envs``, ``neg_agents``, ``supervised``):
command lines (``cli``), result tables (``results``), clean stops (``interrupt``), argument checks
(``checks``), devices, memory limits (``resources``), errors, TensorBoard writers and sweeps."""
