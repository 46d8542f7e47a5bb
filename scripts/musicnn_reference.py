"""Reference outputs of the ORIGINAL musicnn 0.1.0 code, for tests/features/test_musicnn.py.

Writes tests/data/musicnn_reference.npz: per clip, the original's mel input (every 6th frame of the first patch),
its per-patch tags (50 sigmoid outputs) and penultimate features (200) for the first few patches.

It must run with the wheel's own stack, in a separate throwaway environment (never the project's venv, never
inside the repository); the one that produced the committed file:

    python3.11 -m venv /tmp/musicnn-ref/venv          # Python 3.11.7
    /tmp/musicnn-ref/venv/bin/pip install tensorflow-cpu==2.15.1 numpy==1.26.4 librosa==0.10.2
    /tmp/musicnn-ref/venv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/musicnn-ref/venv/bin/python scripts/musicnn_reference.py --gtzan ../shared/data/gtzan/sample

(soxr 1.1.0 and soundfile came in with librosa.) What runs is the wheel's code: ``musicnn.extractor.batch_data``
(librosa.load at 16 kHz, mel spectrogram, float16 cast, log10(10000 x + 1), patches) and the graph of
``musicnn.models.define_model`` built as ``musicnn.extractor.extractor`` builds it. Three things differ from calling
``extractor()`` itself, each for a reason:

* the weights are restored without extractor's bare ``except:`` (which turns a bad path into random weights),
  and every variable is compared with the checkpoint afterwards;
* the penultimate features are fetched per patch: ``extractor(..., extract_features=True)`` concatenates the
  first patch's features over and over (upstream bug; this script checks that the bug is still there and that
  its taggram equals ours);
* the original cannot take a clip shorter than 3 s (``batch_data`` ends with UnboundLocalError). For the short
  generated clip the reference is the original run on that clip resampled to 16 kHz and padded with zeros to
  3 s, which is what genrelib.features.musicnn.patches does.

The generated clips come from ``generated_clips`` in tests/features/test_musicnn.py, whose source this script executes.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
import tensorflow as tf  # noqa: E402
from musicnn import configuration as config  # noqa: E402
from musicnn import extractor as mx  # noqa: E402  (disables eager execution, as in the original)
from musicnn import models  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = "MSD_musicnn"
N_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as in extractor()
MEL_ROWS = np.arange(0, N_FRAMES, 6)  # the stored rows of the first patch's mel input
N_KEEP = 3  # patches kept per clip
HOP_SECONDS = 1.0  # one extra run of the drums clip with input_overlap=1.0


def generated_clips() -> dict:
    """``generated_clips()`` of tests/features/test_musicnn.py (the same source, run here)."""
    src = (ROOT / "tests" / "features" / "test_musicnn.py").read_text()
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "generated_clips")
    namespace = {"np": np}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "tests/features/test_musicnn.py", "exec"), namespace)
    return namespace["generated_clips"]()


def build_graph():
    """The graph exactly as musicnn.extractor.extractor builds it; returns (session, x, is_training, tags, pen)."""
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, penultimate = models.define_model(x, is_training, MODEL, len(config.MSD_LABELS))
        normalized_y = tf.nn.sigmoid(y)
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    prefix = os.path.dirname(mx.__file__) + "/" + MODEL + "/"
    tf.compat.v1.train.Saver().restore(sess, prefix)  # no bare except: a bad path raises
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    variables = tf.compat.v1.global_variables()
    n_params = 0
    for v in variables:
        name = v.op.name
        assert np.array_equal(sess.run(v), reader.get_tensor(name)), f"{name} not restored"
        n_params += int(np.prod(v.shape))
    assert (len(variables), n_params) == (64, 792_079), (len(variables), n_params)
    print(f"restored and checked {len(variables)} variables, {n_params:,} parameters from {prefix}")
    return sess, x, is_training, normalized_y, penultimate


def run_original(sess, graph, path: Path, overlap: int) -> dict:
    """The original's patches of one file, then the graph on each patch (BATCH_SIZE=1, as extractor runs it)."""
    x, is_training, normalized_y, penultimate = graph
    batch, _ = mx.batch_data(str(path), N_FRAMES, overlap)
    tags, pen = [], []
    for i in range(batch.shape[0]):
        t, p = sess.run([normalized_y, penultimate], feed_dict={x: batch[i : i + 1], is_training: False})
        tags.append(t[0])
        pen.append(p[0])
    return {"batch": batch, "tags": np.array(tags, np.float32), "penultimate": np.array(pen, np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gtzan", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan" / "sample")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "musicnn_reference.npz")
    args = parser.parse_args()

    sess, *graph = build_graph()
    out: dict[str, np.ndarray] = {}
    tmp = Path(tempfile.mkdtemp(prefix="musicnn-ref-"))

    def keep(name: str, res: dict, hop_frames: int, with_mel: bool = True) -> None:
        out[f"{name}.n_patches"] = np.array(res["batch"].shape[0])
        out[f"{name}.hop_frames"] = np.array(hop_frames)
        out[f"{name}.tags"] = res["tags"][:N_KEEP]
        out[f"{name}.penultimate"] = res["penultimate"][:N_KEEP]
        if with_mel:
            out[f"{name}.mel"] = res["batch"][0, MEL_ROWS].astype(np.float32)
        print(f"{name}: {res['batch'].shape[0]} patches")

    for name, (pcm, sr) in generated_clips().items():
        out[f"{name}.sha256"] = np.array(hashlib.sha256(pcm.tobytes()).hexdigest())
        path = tmp / f"{name}.wav"
        sf.write(path, pcm, sr, subtype="PCM_16")
        if len(pcm) / sr < 3.0:
            try:
                mx.batch_data(str(path), N_FRAMES, N_FRAMES)
                raise AssertionError("the original now takes short clips: revisit the padding rule")
            except UnboundLocalError:
                pass
            y16, _ = librosa.load(path, sr=config.SR)
            y16 = np.pad(y16, (0, 3 * config.SR - len(y16)))
            path = tmp / f"{name}_padded16k.wav"
            sf.write(path, y16, config.SR, subtype="FLOAT")  # float32, 16 kHz: librosa.load returns it unchanged
        keep(name, run_original(sess, graph, path, N_FRAMES), N_FRAMES)
        if name == "drums":
            hop = librosa.time_to_frames(HOP_SECONDS, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP)
            keep(f"{name}_hop1s", run_original(sess, graph, path, int(hop)), int(hop), with_mel=False)
            drums_path = path

    real = sorted(args.gtzan.glob("*/*.wav"))
    for path in real:
        keep(path.stem, run_original(sess, graph, path, N_FRAMES), N_FRAMES)
    out["real_tracks"] = np.array([f"{p.parent.name}/{p.name}" for p in real])
    sess.close()

    # The wheel's own entry point gives the same taggram, and still has the penultimate-features bug.
    taggram, _, features = mx.extractor(str(drums_path), model=MODEL, extract_features=True)
    assert np.array_equal(taggram.astype(np.float32), out["drums.tags"][: len(taggram)]), "extractor() taggram differs"
    pen = np.asarray(features["penultimate"])
    assert np.array_equal(pen[1], pen[0]) and not np.allclose(pen[1], out["drums.penultimate"][1]), "bug gone?"
    print("extractor(): same taggram; its 'penultimate' repeats the first patch (upstream bug) - confirmed")

    out["versions"] = np.array(
        f"python {platform.python_version()}, tensorflow {tf.__version__}, numpy {np.__version__}, "
        f"librosa {librosa.__version__}, soxr {soxr.__version__}, soundfile {sf.__version__}, musicnn 0.1.0"
    )
    out["mel_rows"] = MEL_ROWS
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB), {out['versions']}")


if __name__ == "__main__":
    sys.exit(main())
