"""Layer 4, the data: what a folder of music holds, how it is split, and the synthetic demo music.

``<root>/<genre>/<file>`` becomes a :class:`Dataset` of :class:`Track` s (:func:`scan`, which checks every file);
splits are always by track (:func:`make_split`: random and stratified, GTZAN's fault-filtered lists, or a split
file); :func:`make_demo` / :func:`make_personal` write GTZAN-shaped synthetic music, deterministic by seed.

Modules: ``tracks`` (scanning), ``splits`` (splits and split files), ``demo`` (demo folders) with ``demo_render``,
``demo_styles`` and ``demo_sounds`` (the synthesis). Imports only the ground layer (config, errors, progress, audio).
"""

from genrelib.datasets.demo import dataset_name, is_demo, make_demo, make_personal
from genrelib.datasets.demo_render import render
from genrelib.datasets.demo_styles import DEFAULT_OVERLAP, DemoError
from genrelib.datasets.splits import (
    SPLIT_NAMES,
    SplitFile,
    file_split,
    gtzan_split,
    gtzan_split_lists,
    make_split,
    random_split,
    read_split_file,
    split_counts,
    split_file_coverage,
    split_table,
    track_key,
)
from genrelib.datasets.tracks import (
    Dataset,
    Track,
    check_file,
    find_audio,
    find_root,
    first_per_genre,
    scan,
    skipped_table,
    summary_table,
)

__all__ = [
    "check_file",
    "Dataset",
    "DEFAULT_OVERLAP",
    "DemoError",
    "file_split",
    "find_audio",
    "find_root",
    "first_per_genre",
    "gtzan_split",
    "gtzan_split_lists",
    "dataset_name",
    "is_demo",
    "make_demo",
    "make_personal",
    "make_split",
    "random_split",
    "read_split_file",
    "render",
    "scan",
    "skipped_table",
    "split_counts",
    "split_file_coverage",
    "SPLIT_NAMES",
    "split_table",
    "SplitFile",
    "summary_table",
    "Track",
    "track_key",
]
