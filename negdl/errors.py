"""The one base class of errors a user fixes by changing an argument, a file or the machine."""


class UserError(Exception):
    """A missing or malformed file, an unavailable resource: nothing the code can fix itself.

    Commands (``negdl.cli.run_main``) print these, like ``ValueError`` and ``OSError``, as one
    ``prog: error: ...`` line instead of a traceback. Library errors of that kind derive from it
    as well as from their usual base (e.g. ``supervised.data.DataFileError``).
    """
