"""The default model: the one that answers when no model is named (``genrelib predict``, ``personal-test``,
notebook 05, a served model without one).

It ships inside the package (``genrelib/data/default``): musicnn features and a linear head trained on 153 real
GTZAN tracks (its ``MODEL_CARD.md`` says how, and how well); ``genrelib train-default DATA`` rebuilds it. Loading
and using it needs numpy only. The older reference model (the summary family on GTZAN's feature table) is still
there by name: ``--model reference``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from genrelib.errors import ModelError

#: The model card's file name in a default-model folder.
MODEL_CARD = "MODEL_CARD.md"
#: Names that mean the default model.
NAMES = ("default",)
REBUILD = "genrelib train-default DATA (make default-model DATA=<the 153 tracks>)"


def default_model_path() -> Path:
    """Folder of the default model shipped inside the package."""
    return Path(str(resources.files("genrelib") / "data" / "default"))


def load_default():
    """The shipped default model; a missing or corrupt file is one ModelError naming it and the rebuild command."""
    from genrelib.models.base import GenreModel

    path = default_model_path()
    try:
        return GenreModel.load(path)
    except (ModelError, OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"the shipped default model at {path} cannot be read ({exc}); rebuild it with {REBUILD}"
        ) from exc
