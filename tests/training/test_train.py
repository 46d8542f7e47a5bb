"""Training, evaluation and MLflow logging on a tiny generated dataset (one epoch per family)."""

import os

import mlflow
import numpy as np
import pytest

from genrelib import datasets, features, tracking
from genrelib.errors import DatasetError, ModelError
from genrelib.evaluation.scoring import evaluate_folder
from genrelib.inference.predict import Predictor, load_model, predict_file
from genrelib.training.config import TrainConfig
from genrelib.training.report import describe
from genrelib.training.trainer import train

from ..conftest import SHARED, needs_shared

FAMILIES = ["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_evaluates_logs_registers_reloads(family, tiny_tree):
    res = train(tiny_tree, TrainConfig(family=family, epochs=1, seed=1), n_jobs=1)
    # the test part is held out by track
    parts = {p: {t for t, q in res.split.items() if q == p} for p in ("train", "valid", "test")}
    assert not (parts["train"] & parts["test"] or parts["valid"] & parts["test"])
    assert set(res.report.track_ids) == parts["test"]
    P = res.model.predict_proba(res.features.X)
    assert P.shape == (len(res.features), 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    # a real MLflow store under tmp_path holds the run's metrics and artifacts
    run = mlflow.get_run(res.run_id)
    assert {"test_track_accuracy", "test_segment_accuracy", "test_track_f1_macro"} <= set(run.data.metrics)
    assert run.data.params["train.family"] == family
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(res.run_id, "figures")}
    assert "figures/test_confusion_track.png" in files
    if family not in ("summary", "musicnn"):
        assert {"figures/training_curves.png", "figures/architecture.png"} <= files
        hist = mlflow.MlflowClient().get_metric_history(res.run_id, "epoch/valid_loss")
        assert len(hist) == 1
    reports = {a.path for a in mlflow.MlflowClient().list_artifacts(res.run_id, "reports")}
    assert "reports/test_report.json" in reports
    # the registered audio model reloads (by URI, by registry version, by alias) and predicts the same
    song = res.features.tracks[0]
    path = tiny_tree / song
    expected = predict_file(res.model, path).proba
    for ref in (
        res.model_uri,
        f"genre-classifier/{res.registered_version}",
        f"genre-classifier@{family.replace('_', '-')}",
        f"runs:/{res.run_id}/model",
    ):
        np.testing.assert_allclose(Predictor(ref).predict(path).proba, expected, rtol=1e-5, atol=1e-6)


def test_same_seed_same_metrics(tiny_tree):
    cfg = TrainConfig(family="seed_cnn", epochs=2, seed=7)
    a = train(tiny_tree, cfg, log=False, n_jobs=1)
    b = train(tiny_tree, cfg, log=False, n_jobs=1)
    assert a.split == b.split
    assert a.report.flat_metrics() == b.report.flat_metrics()
    np.testing.assert_array_equal(a.model.predict_proba(a.features.X), b.model.predict_proba(b.features.X))
    assert a.history == b.history


def test_pyfunc_takes_base64_audio_and_paths(tiny_tree, monkeypatch):
    import base64

    import pandas as pd

    res = train(tiny_tree, TrainConfig(family="summary", seed=1), n_jobs=1)
    model = tracking.load_pyfunc(res.model_uri)
    wav = next(tiny_tree.glob("metal/*.wav"))
    # paths are off unless a folder is allowed, locally as when served (genrelib.inference.serving.Limits)
    monkeypatch.delenv("GENRELIB_SERVE_PATHS_DIR", raising=False)
    refused = model.predict(pd.DataFrame({"path": [str(wav)]}))
    assert refused["error"].iloc[0].startswith(f"{wav}: reading files by path is off")
    assert refused["genre"].iloc[0] is None
    monkeypatch.setenv("GENRELIB_SERVE_PATHS_DIR", str(tiny_tree))
    by_path = model.predict(pd.DataFrame({"path": [str(wav)]}))
    assert by_path["error"].iloc[0] == ""
    b64 = base64.b64encode(wav.read_bytes()).decode()
    by_bytes = model.predict(pd.DataFrame({"audio_base64": [b64]}), params={"top_k": 2, "per_window": True})
    assert by_path["genre"].iloc[0] == by_bytes["genre"].iloc[0]
    cols = [f"p_{g}" for g in ("classical", "metal", "reggae")]
    np.testing.assert_allclose(by_path[cols].to_numpy(), by_bytes[cols].to_numpy()[:1])
    np.testing.assert_allclose(by_bytes[cols].sum(axis=1), 1.0)
    assert len(by_bytes) == 2 and by_bytes["window_start"].tolist() == [-1.0, 0.0]


def test_evaluate_folder_and_unknown_genres(tiny_tree, tmp_path, write):
    res = train(tiny_tree, TrainConfig(family="summary", seed=1), log=False, n_jobs=1)
    whole = evaluate_folder(res.model, tiny_tree, n_jobs=1)
    assert len(whole.track_ids) == 12
    test = evaluate_folder(res.model, tiny_tree, part="test", n_jobs=1)
    assert set(test.track_ids) == set(res.report.track_ids)
    assert test.flat_metrics() == res.report.flat_metrics()
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_tree, other)
    (other / "polka").mkdir()
    shutil.copy(next(tiny_tree.glob("metal/*.wav")), other / "polka" / "p.wav")
    with pytest.raises(ModelError, match=r"genres the model does not know: \['polka'\]"):
        evaluate_folder(res.model, other, n_jobs=1)


def test_bad_training_input(tmp_path, tiny_tree):
    with pytest.raises(ModelError, match="unknown model"):
        TrainConfig(family="transformer")
    (tmp_path / "empty" / "blues").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no readable audio"):
        train(tmp_path / "empty", TrainConfig(family="summary"), log=False)
    with pytest.raises(ModelError, match="needs 'mfcc' features"):
        train(tiny_tree, TrainConfig(family="seed_cnn"), feature_config=features.FeatureConfig(kind="mel"), log=False)


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found in the tracking store"):
        load_model("genre-classifier/999")
    (tmp_path / "x").mkdir()
    with pytest.raises(ModelError, match="neither a genrelib model folder"):
        load_model(tmp_path / "x")


@pytest.mark.parametrize(
    "family,shape,loss",
    [
        ("seed_cnn", (130, 16), "cross-entropy + L2"),
        ("mel_cnn", (130, 32), "cross-entropy"),
        ("crnn", (130, 32), "cross-entropy"),
    ],
)
def test_training_curves_name_the_loss_the_model_minimizes(family, shape, loss):
    from genrelib.models import build_keras
    from genrelib.models.base import GenreModel
    from genrelib.training.config import feature_config_for
    from genrelib.training.report import history_figure

    model = GenreModel(family, ["a", "b", "c"], feature_config_for(family), build_keras(family, shape, 3))
    history = {"loss": [1.2, 0.9], "val_loss": [1.3, 1.0], "accuracy": [0.4, 0.6], "val_accuracy": [0.3, 0.5]}
    fig = history_figure(model, history)
    assert fig.axes[0].get_title() == f"loss ({loss})"
    assert fig.get_suptitle() == f"{family} training curves"


SMALL_TEST_PART = {
    "classical": {"train": 2, "valid": 1, "test": 1, "out": 1},
    "metal": {"train": 2, "valid": 1, "test": 2},
    "reggae": {"train": 2, "valid": 1, "test": 1},
}


def test_gtzan_ff_on_partial_gtzan_is_refused_before_any_work(gtzan_tree, monkeypatch):
    import genrelib.training.splits as splits_module
    import genrelib.training.trainer as trainer_module

    def no_work(*args, **kwargs):
        raise AssertionError("features were extracted (or a model fitted) before the split was checked")

    monkeypatch.setattr(splits_module, "extract", no_work)
    monkeypatch.setattr(trainer_module, "fit", no_work)
    gaps = gtzan_tree(
        {
            "classical": {"train": 2, "valid": 1, "test": 1, "out": 1},
            "metal": {"valid": 1, "test": 2},
            "reggae": {"train": 2, "valid": 1, "out": 1},
        },
        name="gaps",
    )
    with pytest.raises(DatasetError) as err:
        train(gaps, TrainConfig(family="summary", split="gtzan-ff"), log=False, n_jobs=1)
    msg = str(err.value)
    assert "no training tracks for metal" in msg and "no test tracks for reggae" in msg
    assert "classical 2/1/1, metal 0/1/2, reggae 2/1/0" in msg
    assert "2 tracks of the folder are in none of the fault-filtered lists" in msg
    assert "--split random" in msg and "--force" in msg
    small = gtzan_tree(SMALL_TEST_PART, name="small")
    with pytest.raises(
        DatasetError,
        match=r"the test part has 4 tracks \(an honest test part needs at "
        r"least 10, and 2 of every genre; classical 1, reggae 1\)",
    ):
        train(small, TrainConfig(family="summary", split="gtzan-ff"), log=False, n_jobs=1)


def test_describe_says_what_was_forced_left_out_and_still_improving():
    from genrelib.models.base import GenreModel
    from genrelib.training.config import feature_config_for
    from genrelib.training.trainer import TrainResult

    info = {
        "train_rows": 60,
        "valid_rows": 30,
        "epochs_run": 30,
        "best_epoch": 30,
        "train_seconds": 12.0,
        "still_improving": True,
    }
    sizes = {p: {"metal": n} for p, n in (("train", 6), ("valid", 3), ("test", 4))}
    res = TrainResult(
        model=GenreModel("seed_cnn", ["metal"], feature_config_for("seed_cnn"), None, info),
        history={},
        split={},
        split_sizes=sizes,
        features=None,
        extra={"left_out": ["metal/metal.00004.wav"], "split_problems": ["the test part has 4 tracks"]},
    )
    table = describe(res)["value"]
    assert table["tracks left out of the split"] == "1"
    assert table["split problems (trained anyway, force)"] == "the test part has 4 tracks"
    assert table["still improving"] == (
        "yes: validation loss was still falling at the last epoch (30); more epochs would likely help"
    )
    # notebook 03 shows it as a Styler: every line in full, not cut at pandas' 50 characters (issue 21 #12)
    html = describe(res).style.to_html()
    assert "more epochs would likely help" in html
    assert table["alias"] == "not registered"
    res.model.info["still_improving"] = False
    res.extra = {"alias_reason": "@seed-cnn stays on version 3 (test accuracy 0.9 > 0.8 on the same data)"}
    assert {"still improving", "tracks left out of the split"}.isdisjoint(describe(res).index)
    assert describe(res)["value"]["alias"] == res.extra["alias_reason"]


@needs_shared()
def test_gtzan_ff_on_the_shared_train_tracks_is_refused():
    # 46 real tracks, all from the fault-filtered TRAIN list: nothing to validate or test on
    with pytest.raises(
        DatasetError,
        match=r"no test tracks at all; no validation tracks at all \(tracks "
        r"per genre train/valid/test: country 3/0/0, disco 1/0/0",
    ):
        train(SHARED / "ff_train", TrainConfig(family="summary", split="gtzan-ff"), log=False)
    with pytest.raises(DatasetError, match="--force cannot help: there is nothing to train or to validate"):
        train(SHARED / "ff_train", TrainConfig(family="summary", split="gtzan-ff", force=True), log=False)


def test_runs_record_their_data_as_an_mlflow_dataset(tiny_tree):
    # issue 10 #3: the Dataset column was "-" everywhere; runs on the demo and on real audio could not be told apart
    res = train(tiny_tree, TrainConfig(family="summary", seed=1), n_jobs=1, register=False)
    inputs = mlflow.get_run(res.run_id).inputs.dataset_inputs
    # issue 21 #10: each part its own input and context (the test tracks are not "Training"), digest its tracks'
    by_context = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i for i in inputs}
    assert sorted(by_context) == ["test", "training", "validation"]
    ds = datasets.scan(tiny_tree)
    for context, part in (("training", "train"), ("validation", "valid"), ("test", "test")):
        entry = by_context[context]
        tracks = ds.subset([t for t in ds.tracks if res.split[t.track_id] == part])
        assert (entry.dataset.name, entry.dataset.digest) == ("genres (synthetic demo)", tracks.manifest_hash())
        assert str(tiny_tree.resolve()) in entry.dataset.source
        tags = {t.key: t.value for t in entry.tags}
        assert (tags["genrelib.part"], tags["genrelib.manifest_hash"]) == (part, ds.manifest_hash())


def test_logged_models_carry_their_test_metrics_not_the_first_epoch(tiny_tree):
    # issue 10 #1: the Models tab showed every Keras model at its first epoch ("accuracy 0.117, loss 3.21")
    res = train(tiny_tree, TrainConfig(family="seed_cnn", epochs=2, seed=1), n_jobs=1, register=False)
    client = mlflow.MlflowClient()
    outputs = client.get_run(res.run_id).outputs.model_outputs
    assert len(outputs) == 2  # the native Keras model and the audio model
    # named for what they are, each with a description (issue 21 #5)
    logged = {client.get_logged_model(o.model_id).name: client.get_logged_model(o.model_id) for o in outputs}
    assert set(logged) == {"model", "seed_cnn_on_mfcc_features"}
    assert logged["model"].tags["mlflow.note.content"].startswith("seed_cnn genre classifier, audio in: ")
    native = logged["seed_cnn_on_mfcc_features"].tags["mlflow.note.content"]
    assert native.startswith("The bare Keras network inside 'model': mfcc feature rows of shape (")
    for out in outputs:
        linked = {m.key: m.value for m in client.get_logged_model(out.model_id).metrics}
        assert linked["test_track_accuracy"] == pytest.approx(res.report.track.metrics["accuracy"])
        assert linked["test_segment_accuracy"] == pytest.approx(res.report.segment.metrics["accuracy"])
        assert not {"loss", "accuracy", "val_loss", "val_accuracy"} & set(linked)
    # the curves are still there, one point per epoch, at steps 1..epochs, named so that nobody takes the last
    # epoch's training accuracy for the result (issue 21 #4)
    assert [m.step for m in client.get_metric_history(res.run_id, "epoch/valid_loss")] == [1, 2]
    metrics = set(client.get_run(res.run_id).data.metrics)
    epochs = {"epoch/train_loss", "epoch/train_accuracy", "epoch/valid_loss", "epoch/valid_accuracy"}
    assert epochs <= metrics and not {"loss", "accuracy", "val_loss", "val_accuracy"} & metrics
    # what a user meets first in the UI (looked at in Chromium, issue 21 #4-#6): the run's description, above its
    # metrics, gives the per-track test accuracy; MLflow lists metrics in the order first logged, so the logged
    # models' first metric column is test_track_accuracy (it was tracks_train)
    note = client.get_run(res.run_id).data.tags["mlflow.note.content"]
    assert note.startswith(f"**test accuracy per track: {res.report.track.metrics['accuracy']:.3f}** on ")
    assert note.endswith("Metrics named `epoch/...` are curves during training, not results.")
    for out in outputs:
        assert client.get_logged_model(out.model_id).metrics[0].key == "test_track_accuracy"


@pytest.mark.parametrize("spec_augment", [False, True])
def test_mel_cnn_with_one_seed_trains_the_same_weights_whatever_the_worker_count(tiny_tree, spec_augment):
    # issue 21 #3b: mel_cnn scored 0.717, then 0.800, with --seed 42
    cfg = TrainConfig(
        family="mel_cnn", epochs=2, seed=42, time_masks=2 if spec_augment else 0, freq_masks=2 if spec_augment else 0
    )
    a = train(tiny_tree, cfg, log=False, n_jobs=1)
    b = train(tiny_tree, cfg, log=False, n_jobs=2)
    for wa, wb in zip(a.model.estimator.get_weights(), b.model.estimator.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.history == b.history and a.report.flat_metrics() == b.report.flat_metrics()


def test_two_processes_with_one_seed_print_the_same_training(tiny_tree, tmp_path):
    # a fresh process each (another hash seed), the first extracting the features, the second reading its cache
    import re
    import subprocess
    import sys

    lines = []
    for hash_seed in ("1", "2"):
        env = dict(
            os.environ,
            GENRELIB_CACHE=str(tmp_path / "cache"),
            PYTHONHASHSEED=hash_seed,
            MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'ml.db'}",
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        cmd = [sys.executable, "-m", "genrelib.cli", "train", str(tiny_tree), "--model", "mel_cnn", "--epochs", "2"]
        r = subprocess.run([*cmd, "--no-register"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        epochs = [re.sub(r", \d+ s$", "", e) for e in r.stderr.splitlines() if " epoch " in e]
        lines.append(epochs + r.stdout.split("test metrics", 1)[1].splitlines()[:4])
    assert lines[0] == lines[1] and len(lines[0]) == 6


def test_seed_everything_runs_tensorflow_ops_one_at_a_time():
    # issue 21 #3b: with several inter-op threads the gradient that mel_cnn's first batch normalization passes back
    # varied from step to step on the 300-track demo (two `train --seed 42` runs: val loss 1.677 and 1.686)
    import subprocess
    import sys

    code = (
        "import tensorflow as tf\n"
        "from genrelib.training.fitting import seed_everything\n"
        "seed_everything(42)\n"
        "tf.reduce_sum(tf.ones((4, 4)))\n"  # TensorFlow has started: the setting holds, and a second seeding keeps it
        "seed_everything(42)\n"
        "print(tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    env = dict(os.environ, TF_NUM_INTEROP_THREADS="2")  # as tests/conftest.py sets it: seed_everything wins
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["1"], r.stderr[-2000:]
