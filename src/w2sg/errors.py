"""The package's one user-facing exception type."""


class W2SGError(Exception):
    """A problem with the user's input or environment.

    The message is one line that names the problem and says how to fix it. The command line prints
    it as ``w2sg: error: <message>`` and exits with status 2, without a traceback.
    """
