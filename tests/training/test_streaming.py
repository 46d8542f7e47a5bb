"""Training the Keras families from the sharded store: streamed, sane, close to the in-memory run."""

from __future__ import annotations

import numpy as np
import pytest

from genrelib import datasets, features
from genrelib.features import store
from genrelib.models._blocks import VAR_FLOOR
from genrelib.training import streaming


def test_band_stats_equal_the_in_memory_statistics(tiny_tree, tmp_path):
    ds = datasets.scan(tiny_tree)
    sfs = store.extract_to_store(ds, features.FeatureConfig(), tmp_path / "s", shard_size=5, n_jobs=1, progress=False)
    X = sfs.load().X.astype(np.float64)
    mean, var = streaming.band_stats(sfs)
    np.testing.assert_allclose(mean, X.mean(axis=(0, 1)), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(var, X.var(axis=(0, 1)), rtol=1e-10)
    assert (var > VAR_FLOOR).all()


def test_training_stream_is_seeded_shuffled_and_complete(tiny_tree, tmp_path):
    ds = datasets.scan(tiny_tree)
    sfs = store.extract_to_store(
        ds, features.FeatureConfig(kind="mel", n_mels=16), tmp_path / "s", shard_size=3, n_jobs=1, progress=False
    )
    ref = sfs.load()

    def epoch(seed):
        xs, ys = zip(
            *[
                (x.numpy(), y.numpy())
                for x, y in streaming.training_stream(sfs, batch_size=5, seed=seed, shuffle_buffer=4)
            ]
        )
        return np.concatenate(xs), np.concatenate(ys)

    x1, y1 = epoch(3)
    x2, _ = epoch(3)
    x3, _ = epoch(4)
    np.testing.assert_array_equal(x1, x2)  # same seed, same stream
    assert not np.array_equal(x1, x3)  # another seed, another order
    assert not np.array_equal(x1, ref.X)  # shuffled
    # every row exactly once, with its label
    key = lambda X: np.sort(X.reshape(len(X), -1)[:, :8].sum(axis=1))  # noqa: E731
    np.testing.assert_allclose(key(x1), key(ref.X), rtol=1e-6)
    assert sorted(y1.tolist()) == sorted(ref.labels.tolist())
    # repeated, as fit repeats it: every pass has every row once, and each pass another order
    passes = np.concatenate(
        [x.numpy() for x, _ in streaming.training_stream(sfs, batch_size=5, seed=3, shuffle_buffer=4).repeat(2)]
    )
    first, second = passes[: len(ref.X)], passes[len(ref.X) :]
    np.testing.assert_allclose(key(first), key(ref.X), rtol=1e-6)
    np.testing.assert_allclose(key(second), key(ref.X), rtol=1e-6)
    assert not np.array_equal(first, second)


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    """3 genres x 6 clips of 12 s (4 segments each): enough rows for seed_cnn to learn something in a few epochs."""
    from genrelib.datasets import demo

    root = tmp_path_factory.mktemp("small") / "genres"
    demo.make_demo(root, per_genre=6, seconds=12.0, seed=2, genres=("classical", "metal", "reggae"), n_jobs=1)
    return root


def test_train_from_the_store_is_sane_and_close_to_in_memory(small_tree, tmp_path):
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import train

    cfg = TrainConfig(family="seed_cnn", epochs=8, seed=3, batch_size=8, learning_rate=1e-3, patience=8)
    mem = train(small_tree, cfg, log=False, n_jobs=1)
    st = train(small_tree, cfg, log=False, n_jobs=1, store=tmp_path / "store")
    assert isinstance(st.features, store.StoredFeatureSet) and isinstance(st.features.X, np.ndarray)
    assert st.model.info["train_rows"] == mem.model.info["train_rows"] == 44
    assert sorted(st.model.info["split_tracks"]["test"]) == sorted(mem.model.info["split_tracks"]["test"])
    loss = st.history["loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0]  # it learns
    seg_st, seg_mem = st.report.segment.metrics["accuracy"], mem.report.segment.metrics["accuracy"]
    assert seg_st > 0.4  # 16 test segments of 3 genres: chance is 1/3
    # another shuffle of the same rows, the same model and settings: close, not equal (see genrelib.training.streaming)
    assert abs(seg_st - seg_mem) <= 0.25, (seg_st, seg_mem, st.history["val_loss"], mem.history["val_loss"])


def test_sweep_from_the_store(tiny_tree, tmp_path, capsys):
    """``sweep --store``: trials read the stored parts (the summary family: the in-memory sweep's scores, to float32
    rounding) and a Keras family's trials stream from the shards."""
    from genrelib.cli import main
    from genrelib.training.config import TrainConfig
    from genrelib.training.tune import sweep

    cfg = TrainConfig(family="summary", seed=2)
    mem = sweep(tiny_tree, cfg, trials=2, n_jobs=1, register=False)
    st = sweep(tiny_tree, cfg, trials=2, n_jobs=1, register=False, store=tmp_path / "s")
    # the same rows and models, predicted shard by shard; the logistic regression's lbfgs stops within its tolerance
    # (1e-4), and rows read back shard by shard can stop it elsewhere within it: measured 2.2e-4 relative on the
    # cross-entropy of a weakly regularized trial (C 0.055) on this machine, 1e-7 on a strongly regularized one
    assert [t["valid_cross_entropy"] for t in st.trials] == pytest.approx(
        [t["valid_cross_entropy"] for t in mem.trials], rel=1e-3
    )
    assert st.best_params == mem.best_params
    assert st.result.report.track.metrics == mem.result.report.track.metrics
    assert isinstance(st.result.features, store.StoredFeatureSet)

    # waveform copies are not written to a store: a space that searches them is refused before any work
    from genrelib.errors import ModelError

    with pytest.raises(ModelError, match="not written to a feature store"):
        sweep(
            tiny_tree,
            TrainConfig(family="seed_cnn"),
            trials=2,
            space=["aug_copies=1,2", "pitch_shift=1:2"],
            store=tmp_path / "s2",
        )
    assert not (tmp_path / "s2").exists()

    assert (
        main(
            [
                "sweep",
                str(tiny_tree),
                "--model",
                "seed_cnn",
                "--trials",
                "1",
                "--epochs",
                "1",
                "--jobs",
                "1",
                "--param",
                "learning_rate=1e-4:1e-3",
                "--no-register",
                "--store",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "the best configuration trained again (run " in out
    assert len(list((tmp_path / "s").glob("mfcc-*/manifest.json"))) == 1
