"""Augmentation: on-the-fly feature augmentation in a seeded tf.data pipeline (training rows only), cached waveform
copies of training tracks only, the figure, the CLI options and what MLflow records."""

from dataclasses import replace

import mlflow
import numpy as np
import pytest

from genrelib import datasets, features, plots
from genrelib.errors import ModelError
from genrelib.training import augment, input_pipeline
from genrelib.training import copies as wave_copies
from genrelib.training.augment import FeatureAugment, WaveAugment
from genrelib.training.config import TrainConfig, feature_config_for
from genrelib.training.fitting import fit, with_copies
from genrelib.training.splits import split_features
from genrelib.training.trainer import train

from ..conftest import sine

#: every on-the-fly option at once
ON_THE_FLY = dict(time_masks=2, freq_masks=2, mixup=0.2, gain_db=6.0, noise_std=1.0)
OFF = dict(time_masks=0, freq_masks=0, mixup=0.0, gain_db=0.0, noise_std=0.0)


def _parts(root, config):
    ds = datasets.scan(root)
    fs = features.extract(ds, feature_config_for(config.family), n_jobs=1, progress=False)
    split, parts = split_features(fs, ds, config)
    return ds, split, parts


def test_augmentation_is_off_by_default():
    cfg = TrainConfig()
    assert not cfg.augmented and not cfg.feature_augment().active and not cfg.wave_augment().active
    assert cfg.build_kwargs() == {}  # every family builds with its own defaults: the original recipe
    assert augment.describe(cfg.feature_augment(), cfg.wave_augment()) == "none"


def test_bad_augmentation_options_are_clear_errors():
    with pytest.raises(ModelError, match="augmentation applies to the Keras families .* not to summary"):
        TrainConfig(family="summary", mixup=0.2)
    with pytest.raises(ModelError, match=r"give aug_copies >= 1 \(--aug-copies N\)"):
        TrainConfig(pitch_shift=2.0)
    with pytest.raises(ModelError, match="identical copies: give at least one of pitch_shift"):
        TrainConfig(aug_copies=2)
    with pytest.raises(ModelError, match=r"time_stretch .* in \[0, 1\)"):
        TrainConfig(aug_copies=1, time_stretch=1.5)
    with pytest.raises(ModelError, match="mixup must be >= 0"):
        TrainConfig(mixup=-1.0)
    with pytest.raises(ModelError, match="time_masks must be a whole number"):
        TrainConfig(time_masks=1.5)
    with pytest.raises(ModelError, match=r"l2 applies to seed_cnn only \(mel_cnn has no weight penalty\)"):
        TrainConfig(family="mel_cnn", l2=0.01)


def test_a_gain_is_an_offset_on_log_mel_and_on_mfcc_zero_only():
    # Physics first: a gain of g dB moves every log-mel value by g, and the orthonormal DCT turns that into
    # g * sqrt(n_mels) on MFCC 0 and nothing on the others: what gain_vector says.
    y = sine(440.0, 3.0) + sine(1900.0, 3.0, amp=0.1)
    cfg = features.FeatureConfig(kind="mfcc")
    kw = {"n_mfcc": cfg.n_mfcc, "fmax": cfg.fmax, "top_db": cfg.top_db}
    moved = features.mfcc(y * 10 ** (6 / 20), **kw) - features.mfcc(y, **kw)
    np.testing.assert_allclose(moved, np.broadcast_to(6 * input_pipeline.gain_vector(cfg), moved.shape), atol=2e-3)
    np.testing.assert_array_equal(input_pipeline.gain_vector(features.FeatureConfig(kind="mel")), np.ones(128))
    # ... and the on-the-fly gain does exactly that: one offset per row, on MFCC 0 only
    X = np.random.default_rng(0).normal(size=(6, 130, 16)).astype(np.float32)
    Xa, labels = input_pipeline.augment_numpy(X, np.arange(6) % 3, FeatureAugment(gain_db=6.0), cfg, seed=1)
    d = Xa - X
    np.testing.assert_allclose(d[..., 1:], 0.0, atol=1e-5)
    np.testing.assert_allclose(d[..., 0], np.broadcast_to(d[:, :1, 0], d[..., 0].shape), atol=1e-4)
    assert 0 < np.abs(d[:, 0, 0]).max() <= 6 * np.sqrt(128) + 1e-3
    np.testing.assert_array_equal(labels, np.arange(6) % 3)


def test_masks_fill_whole_frames_and_bands_with_the_band_means():
    X = np.random.default_rng(1).normal(size=(16, 130, 32)).astype(np.float32)
    fill = np.full(32, 7.0, np.float32)  # a value no cell of X has
    aug = FeatureAugment(time_masks=2, freq_masks=1, time_mask_width=0.2, freq_mask_width=0.25)
    Xa, _ = input_pipeline.augment_numpy(
        X, np.zeros(16, int), aug, features.FeatureConfig(kind="mel"), seed=2, fill=fill, n_classes=1
    )
    assert Xa.shape == X.shape
    changed = Xa != X
    assert changed.any() and np.all(Xa[changed] == 7.0)
    frames, bands = changed.all(axis=2), changed.all(axis=1)  # masked time frames, masked bands per row
    assert np.all(changed == (frames[:, :, None] | bands[:, None, :]))
    assert frames.sum(axis=1).max() <= 2 * 26 and bands.sum(axis=1).max() <= 8


def test_mixup_blends_two_rows_and_their_one_hot_labels_alike():
    X = np.random.default_rng(2).normal(size=(8, 130, 16)).astype(np.float32)
    labels = np.arange(8)
    Xa, Y = input_pipeline.augment_numpy(
        X, labels, FeatureAugment(mixup=0.4), features.FeatureConfig(), seed=3, n_classes=8
    )
    assert Y.shape == (8, 8)
    np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(8):
        partners = [j for j in np.flatnonzero(Y[i] > 0) if j != i]
        assert len(partners) <= 1
        expected = Y[i, i] * X[i] + sum(Y[i, j] * X[j] for j in partners)
        np.testing.assert_allclose(Xa[i], expected, atol=1e-4)
    assert len({round(float(v), 6) for v in Y.max(axis=1)}) > 1  # the blend differs from row to row


def test_each_epoch_sees_new_variants_and_the_same_seed_the_same_ones():
    X = np.random.default_rng(3).normal(size=(10, 130, 16)).astype(np.float32)
    labels = np.arange(10) % 2
    aug = FeatureAugment(time_masks=1, gain_db=3.0, noise_std=0.5)

    def two_epochs(seed):
        ds, steps = input_pipeline.training_dataset(
            X, labels, aug, features.FeatureConfig(), batch_size=4, seed=seed, n_classes=2
        )
        assert steps == 3
        batches = [(np.asarray(x), np.asarray(y)) for x, y in ds.take(2 * steps)]
        return batches[:steps], batches[steps:]

    first, second = two_epochs(5)
    assert [len(y) for _, y in first] == [4, 4, 2]  # every training row once per epoch
    assert sorted(np.concatenate([y for _, y in first]).tolist()) == sorted(labels.tolist())
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, second))  # new variants (and order) per epoch
    again_first, again_second = two_epochs(5)
    for a, b in zip(first + second, again_first + again_second):
        np.testing.assert_array_equal(a[0], b[0])
    other, _ = two_epochs(6)
    assert not np.array_equal(first[0][0], other[0][0])


def test_same_seed_same_augmented_training(tiny_tree):
    # as test_train.py::test_same_seed_same_metrics, with every on-the-fly option on
    cfg = TrainConfig(family="seed_cnn", epochs=2, seed=7, **ON_THE_FLY)
    a = train(tiny_tree, cfg, log=False, n_jobs=1)
    b = train(tiny_tree, cfg, log=False, n_jobs=1)
    assert a.history == b.history
    np.testing.assert_array_equal(a.model.predict_proba(a.features.X), b.model.predict_proba(b.features.X))
    plain = train(tiny_tree, replace(cfg, **OFF), log=False, n_jobs=1)
    assert plain.history["loss"] != a.history["loss"]  # the augmentation did change what was trained on
    assert plain.history.keys() == a.history.keys() == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_mixup_training_reports_the_loss_the_model_minimizes(tiny_tree):
    import keras

    cfg = TrainConfig(family="seed_cnn", epochs=1, seed=3, mixup=0.4)
    _, _, parts = _parts(tiny_tree, cfg)
    model, history = fit(parts["train"], parts["valid"], cfg)
    assert isinstance(model.estimator.loss, keras.losses.CategoricalCrossentropy)  # soft labels need it
    # On the unmixed validation labels the reported val_loss is the plain cross-entropy of the model's
    # predictions plus seed_cnn's L2 penalty: the same quantity as without mixup.
    P = model.predict_proba(parts["valid"].X)
    y = parts["valid"].labels
    cross_entropy = -np.mean(np.log(P[np.arange(len(y)), y]))
    penalty = float(sum(float(v) for v in model.estimator.losses))
    assert penalty > 0
    assert history["val_loss"][0] == pytest.approx(cross_entropy + penalty, rel=1e-4)


def test_waveform_transforms_do_what_they_say():
    sr = 22050
    y = sine(440.0, 2.0)

    def peak(z):
        return np.fft.rfftfreq(len(z), 1 / sr)[np.argmax(np.abs(np.fft.rfft(z)))]

    up = augment.transform(y, sr, pitch_steps=12.0)
    assert len(up) == len(y) and peak(up) == pytest.approx(880.0, abs=2.0)
    fast = augment.transform(y, sr, stretch_rate=1.25)
    assert abs(len(fast) - len(y) / 1.25) < 512 and peak(fast) == pytest.approx(440.0, abs=2.0)
    np.testing.assert_array_equal(augment.transform(y, sr, shift_seconds=0.5), np.roll(y, sr // 2))
    noisy = augment.transform(y, sr, snr_db=10.0, rng=np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean((noisy - y).astype(float) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)


def test_waveform_copies_are_made_for_training_tracks_only_and_cached(tiny_tree, monkeypatch):
    cfg = TrainConfig(family="mel_cnn", epochs=1, seed=5, aug_copies=2, pitch_shift=2.0, time_stretch=0.1)
    ds, split, parts = _parts(tiny_tree, cfg)
    rows, settings = with_copies(parts["train"], ds, cfg, n_jobs=1)
    copied = {augment.base_id(t) for t in rows.track_ids if "#aug" in t}
    assert copied == set(parts["train"].tracks)
    assert copied.isdisjoint(parts["valid"].tracks) and copied.isdisjoint(parts["test"].tracks)
    assert len(settings) == 2 * len(copied) and {s["copy"] for s in settings} == {1, 2}
    assert all(abs(s["pitch_steps"]) <= 2 and 0.9 <= s["stretch_rate"] <= 1.1 for s in settings)
    # the copies' rows keep their track's genre, and they are new audio (not the original rows again)
    genre_of = dict(zip(parts["train"].track_ids, parts["train"].row_genres))
    copies = rows.subset(np.char.find(rows.track_ids.astype(str), "#aug") >= 0)
    assert all(g == genre_of[augment.base_id(t)] for t, g in zip(copies.track_ids, copies.row_genres))
    assert not np.allclose(copies.X[: len(parts["train"])], parts["train"].X[: len(copies.X)])
    # train() trains on exactly these rows, with the same copies from the cache: nothing is computed again
    monkeypatch.setattr(wave_copies, "track_copies", lambda *a, **k: pytest.fail("copies computed again"))
    res = train(tiny_tree, cfg, log=False, n_jobs=1)
    assert res.model.info["train_rows"] == len(rows)
    assert res.model.info["augmented_rows"] == len(copies)
    assert res.extra["augment_copies"] == settings
    # the cache key holds the settings and the seed
    track = next(t for t in ds.tracks if t.track_id in copied)
    fcfg, wave = parts["train"].config, cfg.wave_augment()
    key = wave_copies.copy_cache_path(track, fcfg, wave, 5)
    assert key.exists()
    assert not any(
        wave_copies.copy_cache_path(t, fcfg, wave, 5).exists() for t in ds.tracks if t.track_id not in copied
    )
    assert key != wave_copies.copy_cache_path(track, fcfg, replace(wave, pitch_shift=1.0), 5)
    assert key != wave_copies.copy_cache_path(track, fcfg, wave, 6)
    assert key != wave_copies.copy_cache_path(track, features.FeatureConfig(kind="mel", n_mels=64), wave, 5)


def test_plot_augmented_examples_shows_originals_beside_their_variants(tiny_tree):
    ds = datasets.scan(tiny_tree)
    tracks = [ds.tracks[0], ds.tracks[-1]]
    cfg = features.FeatureConfig(kind="mel")
    ex = wave_copies.examples(
        tracks,
        cfg,
        FeatureAugment(time_masks=2, freq_masks=2, mixup=0.2),
        WaveAugment(copies=1, pitch_shift=2.0),
        seed=1,
        variants=2,
    )
    assert list(ex) == [t.track_id for t in tracks]
    for variants in ex.values():
        labels = list(variants)
        assert labels[0] == "original" and labels[1].startswith("on the fly 1 (mixup: ")
        assert labels[3].startswith("copy 1: pitch ")
        assert all(S.shape == cfg.row_shape for S in variants.values())
    fig = plots.plot_augmented_examples(ex, kind="mel")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 8 and images[0].get_title() == "original"
    assert images[0].get_ylabel().startswith(tracks[0].track_id)
    assert fig.get_suptitle() == "Augmented training examples"


def test_cli_train_with_augmentation_logs_params_figure_and_copies(tiny_tree, capsys):
    from genrelib.cli import main

    assert (
        main(
            [
                "train",
                str(tiny_tree),
                "--model",
                "seed_cnn",
                "--epochs",
                "1",
                "--spec-augment",
                "--mixup",
                "0.2",
                "--pitch-shift",
                "2",
                "--time-stretch",
                "0.1",
                "--aug-copies",
                "1",
                "--jobs",
                "1",
                "--no-register",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    run = mlflow.get_run(out.split("run ", 1)[1].split(":", 1)[0])
    p = run.data.params
    assert (
        p["train.time_masks"],
        p["train.freq_masks"],
        p["train.mixup"],
        p["train.aug_copies"],
        p["train.pitch_shift"],
        p["train.time_stretch"],
        p["train.gain_db"],
    ) == ("2", "2", "0.2", "1", "2.0", "0.1", "0.0")
    client = mlflow.MlflowClient()
    assert "figures/augmented_examples.png" in {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "reports/augment_copies.csv" in {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert run.data.metrics["train_rows_augmented"] > 0
    # augmentation of a family it does not apply to: one clear error, exit 2
    assert main(["train", str(tiny_tree), "--model", "summary", "--mixup", "0.2", "--no-register"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genrelib: error: augmentation applies to the Keras families") and err.count("\n") == 1
