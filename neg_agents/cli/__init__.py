"""Command-line entry points: ``negdl-train``, ``negdl-watch``, ``negdl-bench``."""
