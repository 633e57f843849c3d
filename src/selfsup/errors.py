"""The one exception type that the command line turns into a plain message (no traceback)."""


class SelfsupError(Exception):
    """A problem with the user's input: the message names it and says what to do."""
