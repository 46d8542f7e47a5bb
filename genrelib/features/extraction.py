"""Extraction of a whole data set: every track's features over worker processes (or a Dask cluster), cached on disk."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from genrelib.datasets.tracks import Dataset, Track
from genrelib.errors import FeatureError
from genrelib.features.cache import cache_path, default_cache_dir
from genrelib.features.compute import FileFeatures, track_features
from genrelib.features.config import FeatureConfig
from genrelib.features.featureset import FeatureSet
from genrelib.features.workers import init_worker

logger = logging.getLogger(__name__)


def extract(
    dataset: Dataset,
    config: FeatureConfig | None = None,
    *,
    n_jobs: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    scheduler: str | None = None,
) -> FeatureSet:
    """Compute (or read from the cache) the features of every track of ``dataset``.

    Runs over processes with a progress bar; a file that cannot be decoded is logged, listed in
    ``skipped`` and left out. The cache file is written atomically (temporary file, then rename); when it cannot
    be written (a full disk, a read-only folder) the features are returned all the same, with the reason in
    :attr:`FeatureSet.cache_error`.

    Parameters
    ----------
    dataset : Dataset
        From :func:`genrelib.datasets.tracks.scan`.
    config : FeatureConfig, optional
        Default ``FeatureConfig()`` (the original notebook's MFCC segments).
    n_jobs : int, optional
        Worker processes; default the number of CPUs. 1 runs in this process (always for ``musicnn``).
    cache_dir : path, optional
        Default :func:`default_cache_dir`.
    use_cache : bool
        Read and write the cache.
    progress : bool
        Show a tqdm progress bar; when False, log a line on the ``genrelib.progress`` logger every tenth of the
        tracks or every 10 s instead (:class:`genrelib.progress.Progress`; the CLI shows them when stderr is not
        a terminal).
    scheduler : str, optional
        A Dask scheduler address (or ``local:N``): on a cache miss the features are computed on that cluster,
        through a sharded store under the cache folder (:func:`genrelib.features.store.extract_to_store`), then read back
        and cached as usual. The result equals the local one; None (the default): local processes.

    Returns
    -------
    FeatureSet
        Rows in the order of ``dataset.tracks``.

    Raises
    ------
    FeatureError
        When no track could be read at all.
    """
    from genrelib.progress import Progress
    from genrelib.progress import logger as progress_log

    config = config or FeatureConfig()
    path = cache_path(dataset, config, cache_dir)
    repaired = []
    if use_cache and path.exists():
        logger.info("reading cached features %s", path)
        try:
            fs = FeatureSet.load(path)
            problem = fs.problem(dataset, config)
        except FeatureError as exc:
            fs, problem = None, str(exc)
        if problem is not None:  # never trusted: computed again below, and the entry rewritten
            why = problem if problem.startswith(str(path)) else f"{path}: {problem}"
            logger.warning("the feature cache entry is bad and is computed again: %s", why)
            repaired.append(f"cache entry {why}; computed again")
    if use_cache and path.exists() and not repaired:
        # The cache is keyed by the readable tracks, so files that scan skips now (added, or broken, since) may
        # differ from those of the extraction that wrote it: they come from this scan; the tracks that failed to
        # decode then are tracks of this data too, and still fail.
        ids = {t.track_id for t in dataset.tracks}
        fs.skipped = list(dataset.skipped) + [tuple(s) for s in fs.skipped if s[0] in ids]
        progress_log.info("%s features: %d tracks read from the cache %s", config.kind, len(fs.tracks), path)
        return fs
    if scheduler:
        from genrelib.features.store import extract_to_store

        fs = extract_to_store(
            dataset, config, Path(cache_dir or default_cache_dir()) / "store", scheduler=scheduler, progress=progress
        ).load()
        fs.repaired = repaired
        return _cache(fs, path) if use_cache else fs
    n_jobs = n_jobs or os.cpu_count() or 1
    if config.kind == "musicnn":
        # One network in this process runs on every core; each worker process would load TensorFlow and the
        # network again (seconds and hundreds of MB each).
        n_jobs = 1
    n_jobs = max(1, min(n_jobs, len(dataset.tracks)))
    results: dict[str, FileFeatures] = {}
    skipped = list(dataset.skipped)
    if not progress:
        progress_log.info(
            "%s features: %d files, %d process%s", config.kind, len(dataset.tracks), n_jobs, "es" if n_jobs > 1 else ""
        )
    bar = Progress(len(dataset.tracks), f"{config.kind} features", bar=progress)
    if n_jobs == 1:
        outcomes = (track_features(t, config) for t in dataset.tracks)
        for track, ff, err in outcomes:
            _collect(track, ff, err, results, skipped)
            bar.update(skipped=len(skipped) - len(dataset.skipped))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"), initializer=init_worker) as pool:
            # A few tracks per task: fewer round trips, still a smooth progress bar.
            size = max(1, min(8, len(dataset.tracks) // (4 * n_jobs)))
            batches = [dataset.tracks[i : i + size] for i in range(0, len(dataset.tracks), size)]
            futures = [pool.submit(_work_many, b, config) for b in batches]
            try:
                for fut in as_completed(futures):
                    outcomes = fut.result()
                    for outcome in outcomes:
                        _collect(*outcome, results, skipped)
                    bar.update(len(outcomes), skipped=len(skipped) - len(dataset.skipped))
            except BaseException:
                # Ctrl-C, SIGTERM or an error: the tracks not started are dropped, rather than all extracted
                # before the pool's exit lets the exception through.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    bar.close()
    order = [t for t in dataset.tracks if t.track_id in results]
    if not order:
        raise FeatureError(f"no track under {dataset.root} could be read; skipped: {skipped[:3]} ...")
    fs = FeatureSet(
        X=np.concatenate([results[t.track_id].X for t in order]),
        track_ids=np.concatenate([[t.track_id] * len(results[t.track_id].X) for t in order]).astype(str),
        window=np.concatenate([results[t.track_id].window for t in order]),
        segment=np.concatenate([results[t.track_id].segment for t in order]),
        row_genres=np.concatenate([[t.genre or ""] * len(results[t.track_id].X) for t in order]).astype(str),
        genres=list(dataset.genres),
        config=config,
        skipped=skipped,
    )
    fs.repaired = repaired
    return _cache(fs, path) if use_cache else fs


def _cache(fs: FeatureSet, path: Path) -> FeatureSet:
    try:
        fs.save(path)
        logger.info("cached features in %s", path)
    except FeatureError as exc:
        # The features are computed and returned all the same; only the next run pays for them again.
        fs.cache_error = (
            f"the feature cache was not written ({exc}); the next run extracts these features "
            "again. Give another cache folder (--cache-dir or $GENRELIB_CACHE), or --no-cache"
        )
        logger.warning("%s", fs.cache_error)
    return fs


def _work_many(tracks: list[Track], config: FeatureConfig) -> list:
    return [track_features(t, config) for t in tracks]


def _collect(track, ff, err, results, skipped) -> None:
    if err is not None:
        logger.warning("skipping %s", err)
        skipped.append((track.track_id, err))
    else:
        results[track.track_id] = ff
