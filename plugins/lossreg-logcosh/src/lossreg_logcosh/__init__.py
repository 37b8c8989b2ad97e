"""lossreg-logcosh: the log-cosh loss as a lossreg plugin (see ``lossreg_logcosh.losses``)."""

__version__ = "0.1.0"
