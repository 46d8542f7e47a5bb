"""The split a training run uses: checked before any work (enough test tracks of every genre), and the features of each
part.
"""

from __future__ import annotations

from pathlib import Path

from genrelib.datasets.splits import make_split, split_counts
from genrelib.datasets.tracks import Dataset
from genrelib.errors import DatasetError, ModelError
from genrelib.features.config import FeatureConfig
from genrelib.features.extraction import extract
from genrelib.features.featureset import FeatureSet
from genrelib.training.config import TrainConfig

#: A split other than ``random`` (whose sizes come from fixed lists, not from the data) needs at least this
#: many test tracks, and this many of every genre, for its test accuracy to mean something.
MIN_TEST_TRACKS = 10


MIN_TEST_PER_GENRE = 2


def split_problems(sizes: dict[str, dict[str, int]], *, kind: str = "random") -> list[str]:
    """What keeps a split from giving an honest test result; empty when nothing does.

    The rule: every genre of the data needs at least one training and one test track, and the validation
    part must not be empty. For a split from fixed lists (``gtzan-ff``, on a folder that holds part of GTZAN),
    the test part also needs at least :data:`MIN_TEST_TRACKS` tracks and :data:`MIN_TEST_PER_GENRE` of every
    genre. A ``random`` split is stratified, keeps a track of every genre in every part and refuses genres of
    fewer than 3 tracks (:func:`genrelib.datasets.splits.random_split`); its test size is the user's ``test_size``.

    Parameters
    ----------
    sizes : dict
        Tracks per part and genre, as :func:`genrelib.datasets.splits.split_counts` gives them.
    kind : str
        The split's kind.
    """
    genres = list(sizes["train"])
    problems = []
    for part, what in (("train", "training"), ("test", "test")):
        missing = [g for g in genres if sizes[part][g] == 0]
        if missing and len(missing) < len(genres):
            problems.append(f"no {what} tracks for {', '.join(missing)}")
        elif missing:
            problems.append(f"no {what} tracks at all")
    if not sum(sizes["valid"].values()):
        problems.append("no validation tracks at all")
    n_test = sum(sizes["test"].values())
    few = [f"{g} {n}" for g, n in sizes["test"].items() if 0 < n < MIN_TEST_PER_GENRE]
    if kind != "random" and n_test and (n_test < MIN_TEST_TRACKS or few):
        problems.append(
            f"the test part has {n_test} tracks (an honest test part needs at least {MIN_TEST_TRACKS}, "
            f"and {MIN_TEST_PER_GENRE} of every genre{'; ' + ', '.join(few) if few else ''})"
        )
    return problems


def check_split(split: dict[str, str], ds: Dataset, config: TrainConfig) -> list[str]:
    """Refuse a split that cannot give an honest test result, unless ``config.force``; return its problems.

    Raises
    ------
    DatasetError
        When :func:`split_problems` finds problems and ``config.force`` is false, or, forced or not, when the
        training or the validation part is empty. The message gives the tracks per genre and part, the tracks
        left out of the split, and the fix.
    """
    sizes = split_counts(split, ds)
    problems = split_problems(sizes, kind=config.split)
    # With no training or no validation track at all there is nothing to fit or to stop on: forcing cannot help.
    hopeless = not sum(sizes["train"].values()) or not sum(sizes["valid"].values())
    if problems and (hopeless or not config.force):
        per_genre = ", ".join(f"{g} {sizes['train'][g]}/{sizes['valid'][g]}/{sizes['test'][g]}" for g in ds.genres)
        left = len(ds.tracks) - len(split)
        lists = "the fault-filtered lists" if config.split != "file" else f"the lists of {config.split_file}"
        left_text = (
            f"; {left} tracks of the folder are in none of {lists} and are left out"
            if left and config.split != "random"
            else ""
        )
        fix = (
            "Use --split random (TrainConfig(split='random')) to split these tracks by genre, or --force "
            "(TrainConfig(force=True)) to train on this split anyway"
        )
        if config.split == "file":
            fix = f"Add tracks of these genres to the lists of {config.split_file}, or u{fix[1:]}"
        if hopeless:
            fix = (
                ("Add training and validation tracks to the split file, or u" if config.split == "file" else "U")
                + "se --split random (TrainConfig(split='random')) to split these tracks by genre (--force cannot "
                "help: there is nothing to train or to validate on)"
            )
        raise DatasetError(
            f"the {config.split} split of {ds.root} cannot give an honest test result: {'; '.join(problems)} "
            f"(tracks per genre train/valid/test: {per_genre}{left_text}). {fix}"
        )
    return problems


def check_genres(ds: Dataset) -> None:
    """Refuse, before any work, a data set a classifier cannot learn from: fewer than two genres with tracks.

    Raises
    ------
    DatasetError
        Naming the genres found and the layout wanted.
    """
    counts = {g: n for g, n in ds.counts().items() if n}
    if len(counts) < 2:
        found = ", ".join(f"{g} ({n} tracks)" for g, n in counts.items()) or "none"
        raise DatasetError(
            f"{ds.root}: a genre classifier needs tracks of at least 2 genres; found {len(counts)}: {found}; "
            "add folders <root>/<genre>/<file> for more genres"
        )


def config_split(ds: Dataset, config: TrainConfig) -> dict[str, str]:
    """The track split ``config`` asks for (``track_id -> part``; see :func:`genrelib.datasets.splits.make_split`),
    after :func:`check_genres`."""
    check_genres(ds)
    return make_split(
        ds,
        kind=config.split,
        seed=config.seed,
        test_size=config.test_size,
        valid_size=config.valid_size,
        split_file=config.split_file or None,
    )


def split_file_record(ds: Dataset, config: TrainConfig) -> dict:
    """For a ``file`` split: the files, the lists' digest and how they meet ``ds`` (listed, matched, missing
    track keys); empty for other splits. Logged as ``split.*`` parameters and kept in ``model.info``."""
    if config.split != "file":
        return {}
    from genrelib.datasets.splits import read_split_file, split_file_coverage

    sf = read_split_file(config.split_file)
    return {"files": sf.names(), "digest": sf.digest, **split_file_coverage(ds, sf)}


def training_features(
    ds: Dataset,
    fcfg: FeatureConfig,
    config: TrainConfig,
    *,
    n_jobs: int | None = None,
    progress: bool = False,
    scheduler=None,
    store: str | Path | None = None,
):
    """The features a training job (train, ``train --cv``, sweep) fits on: :func:`genrelib.features.extraction.extract`
    (cached; on a Dask cluster with ``scheduler``), or with ``store`` the sharded store under that root
    (:func:`genrelib.features.store.extract_to_store`, resuming what is there), whose parts are read lazily and whose Keras
    fits stream (:mod:`genrelib.training.streaming`).

    Raises
    ------
    ModelError
        With ``store`` and waveform copies (``config.aug_copies``): copies are not written to a store.
    """
    if store is None:
        return extract(ds, fcfg, n_jobs=n_jobs, progress=progress, scheduler=scheduler)
    from genrelib.features.store import extract_to_store

    if config.wave_augment().active:
        raise ModelError(
            "waveform copies (--aug-copies) are not written to a feature store; leave out --aug-copies or --store"
        )
    return extract_to_store(ds, fcfg, store, n_jobs=n_jobs, scheduler=scheduler, progress=progress)


def split_features(fs: FeatureSet, ds: Dataset, config: TrainConfig) -> tuple[dict[str, str], dict[str, FeatureSet]]:
    """The track split of ``config``, checked by :func:`check_split`, and the feature set cut along it."""
    split = config_split(ds, config)
    # Tracks that could not be decoded have no rows; they simply drop out of every part.
    have = set(fs.tracks)
    check_split({t: p for t, p in split.items() if t in have}, ds, config)
    return split, fs.split(split)
