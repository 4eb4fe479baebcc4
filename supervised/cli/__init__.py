"""The supervised studies' commands, installed as ``negdl-<name>`` (``negdl-cbomf``, ...)."""
