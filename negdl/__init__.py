"""Helpers shared by the scripts of all three parts (``neg_envs``, ``neg_agents``, ``supervised``).

- ``negdl.cli``: command-line arguments from a dataclass whose fields carry docstrings.
- ``negdl.results``: result rows to CSV, mean +- std tables in markdown, the machine's name.
- ``negdl.writers``: one TensorBoard writer per run name, opened on first use.
"""
