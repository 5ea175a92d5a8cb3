"""Exceptions hamdesign raises for bad input; the CLI turns each into one line and exit code 2."""

from __future__ import annotations


class HamdesignError(Exception):
    """Base class of every error caused by the user's input or environment."""


class BackendError(HamdesignError):
    """An unknown backend name, or a backend whose framework is not installed."""


class ModelError(HamdesignError):
    """A malformed, inconsistent or non-Hermitian model description."""


class LatticeError(ModelError):
    """Lattice vectors that are singular or of the wrong shape."""


class ModelFileError(ModelError):
    """A model file that cannot be parsed; the message names the file and the place."""


class ParameterError(HamdesignError):
    """Parameter values of the wrong shape or name, or out of range."""


class MemoryBudgetError(HamdesignError):
    """A request whose working set would not fit in the configured memory budget."""


class ConfigError(HamdesignError):
    """A design configuration with an unknown key, a wrong type or an out-of-range value."""


class ResultFolderError(HamdesignError):
    """A result folder that cannot receive this run (base of the three below)."""


class ResultFolderConflict(ResultFolderError):
    """The folder holds another run's results (another config, model, seed or length); the message names both and the ways out."""


class ResultFolderLocked(ResultFolderError):
    """Another live process is writing the folder; the message names its pid, host and start time."""


class NoCheckpointError(ResultFolderError):
    """``resume`` on a folder that holds no checkpoint."""
