"""Helpers shared by the scripts of all three parts (``neg_envs``, ``neg_agents``, ``supervised``).

- ``negdl.cli``: command lines from a dataclass whose fields carry docstrings (parsed by tyro),
  ``name=value`` options and ``run_main``.
- ``negdl.results``: result rows to CSV, mean +- std tables in markdown, the machine's name.
"""
