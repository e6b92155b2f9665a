"""The one exception the agent raises for anything that should end a run with status "failed"."""


class AgentError(Exception):
    """A run cannot go on; the message is one line naming the bad value."""
