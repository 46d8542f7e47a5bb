"""Layer 5, the features: from audio to rows a model learns from.

Signal primitives on arrays (``dsp``: mel, MFCC, HPSS, the GTZAN summary statistics; ``musicnn``: the pretrained
network), the configuration that names a feature kind (:class:`FeatureConfig`), the in-memory container
(:class:`FeatureSet`), extraction of a whole data set with its cache and worker processes (:func:`extract`), the
sharded on-disk store (:func:`extract_to_store`, :func:`open_store`) and extraction on a Dask cluster
(``distributed``). Imports the ground layer and :mod:`genrelib.datasets`.
"""

from genrelib.features.cache import cache_path, default_cache_dir, entry_folder
from genrelib.features.compute import FileFeatures, file_features, window_features
from genrelib.features.config import KINDS, SUMMARY_COLUMNS, FeatureConfig, musicnn_columns
from genrelib.features.dsp import hpss, log_mel, median_filter_rows, mel_filterbank, mel_power, mfcc, summary
from genrelib.features.extraction import extract
from genrelib.features.featureset import FeatureSet, describe, rows_per_genre
from genrelib.features.store import extract_to_store, write_featureset
from genrelib.features.stored import StoredFeatureSet, open_store

__all__ = [
    "median_filter_rows",
    "cache_path",
    "default_cache_dir",
    "describe",
    "entry_folder",
    "extract",
    "extract_to_store",
    "FeatureConfig",
    "FeatureSet",
    "file_features",
    "FileFeatures",
    "hpss",
    "KINDS",
    "log_mel",
    "mel_filterbank",
    "mel_power",
    "mfcc",
    "musicnn_columns",
    "open_store",
    "rows_per_genre",
    "StoredFeatureSet",
    "summary",
    "SUMMARY_COLUMNS",
    "window_features",
    "write_featureset",
]
