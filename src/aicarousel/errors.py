"""Exception classes of aicarousel.

Every error raised on bad input derives from :class:`AicarouselError`, carries a message that
names the bad thing and says how to fix it, and is turned by the CLI into one line on stderr
with exit status 2.
"""


class AicarouselError(Exception):
    """Base class of all aicarousel errors."""


class ModelFileError(AicarouselError):
    """The model file is missing, unreadable or cannot be translated (message names file/line)."""


class UnknownParameterError(AicarouselError, KeyError):
    """A parameter name is not a constant of the model (message suggests close names)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ParameterValueError(AicarouselError, ValueError):
    """A parameter value has the wrong kind or lies outside physical sense."""


class SimulationError(AicarouselError):
    """A run failed or produced NaN/inf (message names the first variable and time)."""


class ScenarioError(AicarouselError):
    """A scenario file is malformed or refers to unknown things."""


class UnsupportedFeatureError(AicarouselError):
    """A model uses a function the intermediate representation does not support."""


class OutputError(AicarouselError):
    """An output file cannot be written."""


class ChecksError(AicarouselError):
    """A reality-checks file (``models/<model>.checks.yaml``) is malformed or names unknown
    things (message names the file, the check and the fix)."""


class MissingResultsError(AicarouselError, FileNotFoundError):
    """A figure or analysis step needs a result file that is not there (message names the step
    that makes it)."""


class CalibrationError(AicarouselError):
    """Calibration targets, parameters or a chain store cannot be used (message names the
    target, parameter or file and the fix)."""
