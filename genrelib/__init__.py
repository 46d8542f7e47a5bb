"""genrelib: music genre classification, honestly measured."""

__version__ = "0.1.0"
