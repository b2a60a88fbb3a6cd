"""Errors that the CLI turns into one line on stderr and exit code 2.

Anything a user can get wrong (a name, a path, a parameter, a run folder) raises
`KerasaeError` with a message that names the problem and the fix.
"""


class KerasaeError(ValueError):
    """A user-facing error: the message is shown as is, without a traceback."""


class UnknownModelError(KerasaeError, KeyError):
    """No model is registered under this name."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


class NotGenerativeError(KerasaeError):
    """The model has no prior to sample from (or no score to run Langevin on)."""


class TrainingDivergedError(KerasaeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3  # not a bad input (2): the same command may work with a lower learning rate
