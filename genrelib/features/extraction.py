"""Extraction of a whole data set: every track's features over worker processes (or a Dask cluster), cached on disk."""

from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from genrelib.datasets.tracks import Dataset, Track
from genrelib.errors import FeatureError
from genrelib.features.cache import (
    default_cache_dir,
    entry_folder,
    lookup,
    write_entry,
)
from genrelib.features.compute import FileFeatures, track_features
from genrelib.features.config import FeatureConfig
from genrelib.features.digests import content_hash
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

    The cache is per file (:mod:`genrelib.features.cache`): each track whose file (by its content) was extracted
    before with ``config`` is read from there, only the others are computed, over processes with a progress bar,
    and each is cached as it comes (atomically: a temporary file, then a rename). A line on the
    ``genrelib.progress`` logger says how many tracks were read from the cache and how many are computed; the
    counts are also :attr:`FeatureSet.cached` and :attr:`FeatureSet.computed`. A cache entry that is unreadable or
    does not fit the configuration is reported (a warning naming it on that logger, and in
    :attr:`FeatureSet.repaired`) and computed again. A file that cannot be decoded is logged, listed in ``skipped``
    and left out. When the cache cannot be written (a full disk, a read-only folder) the features are returned all
    the same, with the reason in :attr:`FeatureSet.cache_error`.

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
        through a sharded store under the cache folder (:func:`genrelib.features.store.extract_to_store`), then
        cached per file as usual. The result equals the local one; None (the default): local processes.

    Returns
    -------
    FeatureSet
        Rows in the order of ``dataset.tracks``: the same arrays, bit for bit, whichever tracks came from the cache.

    Raises
    ------
    FeatureError
        When no track could be read at all.
    ModelError
        ``musicnn`` features with ``$GENRELIB_MUSICNN_ENGINE`` set to no engine.
    """
    from genrelib.progress import logger as progress_log

    config = config or FeatureConfig()
    if config.kind == "musicnn":
        from genrelib.features import musicnn

        musicnn.default_engine()  # a bad $GENRELIB_MUSICNN_ENGINE: one error before any track, not one per track
    folder = entry_folder(config, cache_dir)
    found: dict[str, FileFeatures] = {}
    entries: dict[str, Path] = {}
    repaired: list[str] = []
    if use_cache:
        for t, (entry, ff, problem) in zip(dataset.tracks, lookup([t.path for t in dataset.tracks], config, cache_dir)):
            if entry is not None:
                entries[t.track_id] = entry
            if ff is not None:
                found[t.track_id] = ff
            elif problem is not None:  # never trusted: computed again below, and the entry rewritten
                repaired.append(f"cache entry {problem} (features of {t.track_id}); computed again")
                progress_log.warning("warning: %s", repaired[-1])
    todo = [t for t in dataset.tracks if t.track_id not in found]
    if use_cache:  # on a terminal too: says where the features come from
        progress_log.info(
            "%s features: %d files, %d read from the cache (%s), %d to compute",
            config.kind,
            len(dataset.tracks),
            len(found),
            folder,
            len(todo),
            extra={"every_time": True},
        )
    results, skipped = dict(found), list(dataset.skipped)
    cache_error = None
    if todo:
        for track, ff, err in _compute(dataset, todo, config, n_jobs, progress, scheduler, cache_dir):
            if err is not None:
                logger.warning("skipping %s", err)
                skipped.append((track.track_id, err))
                continue
            results[track.track_id] = ff
            # written only when the file still has the content it was keyed by (not changed while it was read)
            entry = entries.get(track.track_id)
            if use_cache and cache_error is None and entry is not None and entry.stem == content_hash(track.path):
                try:
                    write_entry(entry, ff, config)
                except FeatureError as exc:
                    # The features are computed and returned all the same; only the next run pays for them again.
                    cache_error = (
                        f"the feature cache was not written ({exc}); the next run extracts these features "
                        "again. Give another cache folder (--cache-dir or $GENRELIB_CACHE), or --no-cache"
                    )
                    logger.warning("%s", cache_error)
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
    fs.repaired, fs.cache_error = repaired, cache_error
    fs.cached, fs.computed = len(found), len(todo) - (len(skipped) - len(dataset.skipped))
    return fs


def _compute(dataset: Dataset, todo: list[Track], config: FeatureConfig, n_jobs, progress, scheduler, cache_dir):
    """Compute the features of ``todo`` (tracks of ``dataset``): ``(track, FileFeatures, None)`` or ``(track, None,
    why)`` for each, in the order they finish."""
    from genrelib.progress import Progress
    from genrelib.progress import logger as progress_log

    if scheduler:
        yield from _on_cluster(dataset, todo, config, scheduler, cache_dir, progress)
        return
    n_jobs = n_jobs or os.cpu_count() or 1
    if config.kind == "musicnn":
        # One network in this process runs on every core; each worker process would load TensorFlow and the
        # network again (seconds and hundreds of MB each).
        n_jobs = 1
    n_jobs = max(1, min(n_jobs, len(todo)))
    if not progress:
        progress_log.info(
            "%s features: %d files, %d process%s", config.kind, len(todo), n_jobs, "es" if n_jobs > 1 else ""
        )
    bar = Progress(len(todo), f"{config.kind} features", bar=progress)
    failed = 0
    if n_jobs == 1:
        if config.kind == "musicnn":
            from genrelib.features import musicnn

            # One BLAS thread for the whole loop, as in the worker processes: musicnn's network already runs on
            # every core (onnxruntime's own threads); see musicnn.one_blas_thread.
            blas = musicnn.one_blas_thread()
        else:
            blas = contextlib.nullcontext()
        with blas:
            for t in todo:
                outcome = track_features(t, config)
                failed += outcome[2] is not None
                bar.update(skipped=failed)
                yield outcome
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"), initializer=init_worker) as pool:
            # A few tracks per task: fewer round trips, still a smooth progress bar.
            size = max(1, min(8, len(todo) // (4 * n_jobs)))
            futures = [pool.submit(_work_many, todo[i : i + size], config) for i in range(0, len(todo), size)]
            try:
                for fut in as_completed(futures):
                    outcomes = fut.result()
                    failed += sum(err is not None for _, _, err in outcomes)
                    bar.update(len(outcomes), skipped=failed)
                    yield from outcomes
            except BaseException:
                # Ctrl-C, SIGTERM or an error: the tracks not started are dropped, rather than all extracted
                # before the pool's exit lets the exception through.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    bar.close()


def _on_cluster(dataset: Dataset, todo: list[Track], config: FeatureConfig, scheduler: str, cache_dir, progress):
    """The features of ``todo`` computed on a Dask cluster, through a sharded store under the cache folder."""
    from genrelib.features.store import extract_to_store

    missing = Dataset(root=dataset.root, tracks=list(todo), genres=list(dataset.genres))
    fs = extract_to_store(
        missing, config, Path(cache_dir or default_cache_dir()) / "store", scheduler=scheduler, progress=progress
    ).load()
    why = dict(fs.skipped)
    for t in todo:
        if t.track_id in why:
            yield t, None, why[t.track_id]
            continue
        rows = fs.track_ids == t.track_id
        yield (
            t,
            FileFeatures(fs.X[rows], fs.window[rows], fs.segment[rows], np.zeros(int(rows.sum()), np.float32)),
            None,
        )


def _work_many(tracks: list[Track], config: FeatureConfig) -> list:
    return [track_features(t, config) for t in tracks]
