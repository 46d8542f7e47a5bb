import json
import subprocess
import sys

import numpy as np
import pytest

from genrelib.cli import main
from genrelib.errors import DatasetError
from genrelib.inference import reference
from genrelib.inference.predict import load_model, reference_model_path

from ..conftest import SHARED, needs_shared


@needs_shared()
def test_train_reference_beats_published_mfcc_svm_and_gives_the_shipped_model(tmp_path, capsys):
    # one training for both checks (the suite's time): the command's model is the shipped one
    assert (
        main(["train-reference", "--table", str(SHARED / "features_30_sec.csv"), "--out", str(tmp_path / "ref")]) == 0
    )
    out = capsys.readouterr().out
    assert "fault-filtered TEST split (290 tracks)" in out and "registered as genre-classifier/" in out
    model = load_model(tmp_path / "ref")
    info = model.info
    assert info["rows"] == {"train": 443, "valid": 197, "test": 290}
    assert info["test_accuracy"] > 0.534  # published MFCC statistics + SVM on this split: 53.4%
    assert (tmp_path / "ref" / "MODEL_CARD.md").read_text().count("fault-filtered") >= 1
    shipped = load_model("reference")
    table = reference.load_table(SHARED / "features_30_sec.csv")
    X = table[reference.SUMMARY_COLUMNS].to_numpy(np.float64)[:50]
    # (lbfgs ends within 1e-6 of the same optimum on different numpy/scipy builds)
    np.testing.assert_allclose(shipped.predict_proba(X), model.predict_proba(X), rtol=1e-4, atol=1e-6)
    assert shipped.info["test_accuracy"] == pytest.approx(info["test_accuracy"])


def test_shipped_reference_model_loads_without_tensorflow(tmp_path, write):
    from ..conftest import sine

    wav = write("a.wav", sine(220, 5.0) + 0.3 * sine(1320, 5.0))
    code = (
        "import sys, json; from genrelib.inference import Predictor; p = Predictor('reference'); s = p.predict(sys.argv[1]); "
        "print(json.dumps({'tf': 'tensorflow' in sys.modules, 'sum': float(s.proba.sum()), 'n': len(p.genres)}))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(wav)], capture_output=True, text=True, check=True)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"tf": False, "sum": pytest.approx(1.0), "n": 10}
    card = (reference_model_path() / "MODEL_CARD.md").read_text()
    assert "2000" in card and "fault-filtered" in card


def test_bad_table(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        reference.load_table(tmp_path / "nope.csv")
    (tmp_path / "t.csv").write_text("filename,label\na.wav,blues\n")
    with pytest.raises(DatasetError, match="lacks columns"):
        reference.load_table(tmp_path / "t.csv")


@needs_shared()
def test_a_table_that_is_not_gtzans_is_refused(tmp_path, capsys):
    # issue 10 #10: a table of other tracks with GTZAN's genres silently got the GTZAN fault-filtered split
    import pandas as pd

    df = pd.read_csv(SHARED / "features_30_sec.csv")
    df["filename"] = [f"mysong{i:04d}.wav" for i in range(len(df))]
    df.to_csv(tmp_path / "mine.csv", index=False)
    assert main(["train-reference", "--table", str(tmp_path / "mine.csv"), "--no-log"]) == 2
    err = capsys.readouterr().err
    assert "only 0 of its 1000 rows are GTZAN tracks of the fault-filtered lists (of 930)" in err
    assert "genrelib train DATA --model summary" in err
