"""Where extracted features are cached: keyed by the feature configuration and the data's manifest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from genrelib.datasets.tracks import Dataset
from genrelib.features.config import FeatureConfig

#: Bumped when the same configuration and audio give other features (the cache and stores of older versions are then
#: computed again, not trusted). 2: the DC offset is removed where audio enters (genrelib.audio.stream).
FEATURES_VERSION = 2
_VERSION_KEY = "" if FEATURES_VERSION == 1 else f"-v{FEATURES_VERSION}"


def default_cache_dir() -> Path:
    """``$GENRELIB_CACHE`` or ``~/.cache/genrelib``."""
    return Path(os.environ.get("GENRELIB_CACHE", Path.home() / ".cache" / "genrelib"))


def cache_path(dataset: Dataset, config: FeatureConfig, cache_dir: str | Path | None = None) -> Path:
    """Where the features of ``dataset`` by ``config`` are cached: keyed by the config and the data manifest."""
    key = hashlib.sha256(f"{config.hash()}-{dataset.manifest_hash()}{_VERSION_KEY}".encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "features" / f"{config.kind}-{key}.npz"
