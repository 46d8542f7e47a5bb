"""Exceptions raised by genrelib. Every message names the bad file or value and the fix."""


class GenrelibError(Exception):
    """Root of all genrelib errors; the CLI turns it into a one-line message and exit code 2."""


class AudioError(GenrelibError):
    """An audio file cannot be read: corrupt, truncated, empty, silent or of an unsupported kind."""


class DatasetError(GenrelibError):
    """A data folder, split list or label set is unusable."""


class FeatureError(GenrelibError):
    """Feature extraction was given an invalid configuration or produced nothing."""


class ModelError(GenrelibError):
    """A model cannot be built, found, loaded or applied to the given data."""


class TrackingError(GenrelibError):
    """The MLflow tracking store cannot be used: locked, read-only, missing or not a database."""
