"""Helpers shared by the scripts of all three parts (``neg_envs``, ``neg_agents``, ``supervised``).

- ``negdl.cli``: command lines from a dataclass whose fields carry docstrings (parsed by tyro),
  ``name=value`` options, ``run_main`` and checks of input and output paths.
- ``negdl.results``: result rows to CSV, mean +- std tables in markdown, the machine's name,
  files written whole or not at all.
- ``negdl.interrupt``: ``StopOnSignal``, the first Ctrl-C/SIGTERM stops cleanly, the second aborts.
- ``negdl.checks``, ``negdl.devices``, ``negdl.resources``, ``negdl.errors``: argument checks
  with one style of message, the requested torch device (an absent one is an error), memory
  limits checked before allocating, and the base class of errors commands print as one line.
- ``negdl.writers``: one TensorBoard writer per run name, opened on first use.
"""
