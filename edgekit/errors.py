"""The one exception type the ``edgekit`` command turns into a one-line message and a non-zero exit."""


class EdgekitError(Exception):
    """A user-facing error: the message names the bad value and what is accepted."""


def unknown(kind, value, accepted):
    """An ``EdgekitError`` for a value that is not one of ``accepted``."""
    choices = ", ".join(sorted(str(a) for a in accepted))
    return EdgekitError(f"unknown {kind} {value!r}; accepted: {choices}")
