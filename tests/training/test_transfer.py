"""The musicnn feature kind and model family: pretrained embeddings behind the same interfaces as the others."""

import numpy as np
import pandas as pd

from genrelib import audio, datasets, features
from genrelib.cli import main
from genrelib.features import musicnn


def test_musicnn_feature_kind_is_window_means_of_patch_embeddings(tiny_tree, tmp_path, capsys):
    out = tmp_path / "emb.csv"
    assert main(["features", str(tiny_tree), "--kind", "musicnn", "--out", str(out)]) == 0
    assert "musicnn features of 12 tracks: X (12, 250)" in capsys.readouterr().out
    df = pd.read_csv(out)
    cols = features.musicnn_columns()
    assert list(df.columns) == ["filename", "window", *cols, "label"] and len(df) == 12
    assert cols[200:203] == ["tag:rock", "tag:pop", "tag:alternative"]
    # a row is the mean over the window's 3 s patches of what the network gives for them
    ds = datasets.scan(tiny_tree)
    track = ds.tracks[0]
    y, sr = audio.load(track.path)
    emb, tags = musicnn.embed(y, sr)
    row = df[df["filename"] == track.path.name][cols].to_numpy()[0]
    np.testing.assert_allclose(row, np.concatenate([emb.mean(0), tags.mean(0)]), atol=1e-5)
    assert ((row[200:] >= 0) & (row[200:] <= 1)).all()
    # cached like the other kinds: a second extraction reads the cache
    fs = features.extract(ds, features.FeatureConfig(kind="musicnn"), progress=False)
    assert (fs.cached, fs.computed) == (12, 0) and fs.X.shape == (12, 250)


def test_musicnn_patch_hop_changes_the_features_and_the_cache_key(tiny_tree):
    ds = datasets.scan(tiny_tree)
    a, b = features.FeatureConfig(kind="musicnn"), features.FeatureConfig(kind="musicnn", patch_hop=0.5)
    assert features.entry_folder(a) != features.entry_folder(b)
    y, sr = audio.load(ds.tracks[0].path)  # 4 s: one patch without overlap, three with a 0.5 s hop
    assert len(musicnn.embed(y, sr)[0]) == 1 and len(musicnn.embed(y, sr, hop_seconds=0.5)[0]) == 3
    Xa = features.window_features(y, sr, a)
    Xb = features.window_features(y, sr, b)
    assert Xa.shape == Xb.shape == (250,) and not np.allclose(Xa, Xb)


def test_predict_tags_for_any_model_in_every_format(tiny_tree, capsys):
    import json

    song = next(tiny_tree.glob("metal/*.wav"))
    # the reference model (summary family) gives the genre; musicnn the tags
    assert main(["predict", str(song), "--model", "reference", "--tags", "3", "--timeline"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]  # after the line naming the model
    assert len(lines) == 2 and lines[0].startswith(str(song)) and "| tags: " in lines[0]
    assert lines[1].startswith("        0.0 s  ") and "| tags: " in lines[1]
    names = [t for t in lines[0].split("| tags: ")[1].split("  ")]
    assert len(names) == 3 and all(n.rsplit(" ", 1)[0] in musicnn.TAGS["MSD_musicnn"] for n in names)

    assert main(["predict", str(song), "--model", "reference", "--tags", "2", "--timeline", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert [t["tag"] for t in out["tags"]] == [n.rsplit(" ", 1)[0] for n in names[:2]]
    assert len(out["windows"][0]["tags"]) == 2
    y, sr = audio.load(song)
    probs = musicnn.embed(y, sr)[1].mean(0)
    top = int(np.argmax(probs))
    assert out["tags"][0] == {"tag": musicnn.TAGS["MSD_musicnn"][top], "probability": float(probs[top])}

    assert main(["predict", str(song), "--model", "reference", "--tags", "2", "--format", "csv"]) == 0
    import io

    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["tag1"][0] == out["tags"][0]["tag"] and list(df.columns[-4:]) == [
        "tag1",
        "tag1_probability",
        "tag2",
        "tag2_probability",
    ]


def test_predict_tags_bad_input(tiny_tree, capsys):
    song = next(tiny_tree.glob("metal/*.wav"))
    assert main(["predict", str(song), "--tags", "3", "--tag-model", "AudioSet_vgg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genrelib: error: unknown musicnn model 'AudioSet_vgg'; choose one of MSD_musicnn")
    assert main(["predict", str(song), "--tags", "-1"]) == 2


def test_tags_import_no_tensorflow(tiny_tree):
    # the musicnn network runs on onnxruntime: tags cost no TensorFlow import, with any model giving the genre
    import subprocess
    import sys

    song = next(tiny_tree.glob("metal/*.wav"))
    code = (
        "import sys; from genrelib.inference import Predictor; p = Predictor({model!r}, tag_model={tm!r}); "
        f"r = p.predict({str(song)!r}); print('tensorflow' in sys.modules, len(r.tag_names))"
    )
    cases = [
        ("reference", None, "False 0"),
        ("reference", "MSD_musicnn", "False 50"),
        (None, "MSD_musicnn", "False 50"),
    ]
    for model, tm, expect in cases:
        code_ = code.format(model=model, tm=tm)
        out = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, timeout=300)
        assert out.stdout.split() == expect.split(), out.stderr[-2000:]


def test_personal_test_lists_tags(tiny_tree, capsys):
    from genrelib.inference.personal import personal_test

    res = personal_test(tiny_tree / "metal", top_tags=2)  # logged to the test's MLflow store
    assert len(res.songs) == 4 and res.songs["tags"].str.count(", ").eq(1).all()
    assert res.windows["tags"].str.len().gt(0).all()
    import mlflow

    assert mlflow.get_run(res.run_id).data.params["top_tags"] == "2"
    assert main(["personal-test", str(tiny_tree / "metal"), "--tags", "1", "--no-log"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[-1] == "tags"  # the table's header, after the line naming the model


def test_predict_tags_say_a_song_under_3_s_is_one_padded_patch(tiny_tree, tmp_path, capsys):
    import json

    import soundfile as sf

    from genrelib.datasets import demo

    short = tmp_path / "short.wav"
    sf.write(short, demo.render("metal", 1.5, seed=4), 22050)  # over genrelib's 0.5 s minimum, under one patch
    song = next(tiny_tree.glob("metal/*.wav"))  # 4 s: one whole patch, nothing to say
    note = "shorter than 3 s: musicnn tags come from one zero-padded patch"
    assert main(["predict", str(short), str(song), "--tags", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]  # after the line naming the model
    assert lines[0].startswith(str(short)) and "| tags: " in lines[0]
    assert lines[1] == f"    note: {note}"
    assert lines[2].startswith(str(song)) and len(lines) == 3
    assert main(["predict", str(short), str(song), "--tags", "2", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["tags_note"] == note and "tags_note" not in out[1]
    assert main(["predict", str(short), "--tags", "2", "--format", "csv"]) == 0
    assert f"note: {short}: {note}" in capsys.readouterr().err
    assert main(["predict", str(short)]) == 0  # no tags asked: nothing said about them
    assert "note:" not in capsys.readouterr().out
