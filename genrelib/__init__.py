"""genrelib: music genre classification, honestly measured."""

import os as _os

# TensorFlow reads these when it is first imported (only by the model code): quiet logs, reproducible math.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"
