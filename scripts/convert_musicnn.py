"""Convert a pretrained musicnn checkpoint (musicnn 0.1.0 wheel, TensorFlow 1) to genrelib's weights file.

    .venv/bin/python scripts/convert_musicnn.py                       # MSD_musicnn, wheel fetched with pip
    .venv/bin/python scripts/convert_musicnn.py --model MTT_musicnn --wheel musicnn-0.1.0-py3-none-any.whl

Steps: ``pip download --no-deps musicnn==0.1.0`` (unless ``--wheel`` is given; the wheel's own dependencies,
which pin numpy<1.17, are never installed), read ``musicnn/<model>/`` (a TF-1 checkpoint with the prefix
``<model>/``, whose ``checkpoint`` file points at the author's machine) from the wheel with
``tf.train.load_checkpoint``, keep the model's variables (not the Adam optimizer slots), check that they are
exactly the 64 that genrelib.features.musicnn uses (names and shapes, 792,079 parameters), and write them as float32 to
``genrelib/data/musicnn/<model>.npz`` under their checkpoint names. The npz is written with fixed zip
timestamps, so a rerun gives the same bytes; the script prints the sha256 of the wheel and of the npz (record
them in genrelib/data/musicnn/README.md). Runs in the project's environment (TensorFlow 2.16 or newer).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrelib.features import musicnn  # noqa: E402

WHEEL = "musicnn==0.1.0"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"  # musicnn-0.1.0-py3-none-any.whl


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(dest: Path) -> Path:
    """``pip download --no-deps musicnn==0.1.0`` into ``dest``; returns the wheel."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL, "-d", str(dest)],
        check=True,
    )
    return next(dest.glob("musicnn-0.1.0-*.whl"))


def read_checkpoint(wheel: Path, model: str, tmp: Path) -> dict[str, np.ndarray]:
    """Every variable of ``musicnn/<model>/`` in the wheel, read with ``tf.train.load_checkpoint``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    with zipfile.ZipFile(wheel) as zf:
        for suffix in (".index", ".data-00000-of-00001"):
            # Renamed: the original prefix "<model>/" is a folder, which load_checkpoint would resolve through
            # the stale 'checkpoint' file.
            (tmp / f"{model}{suffix}").write_bytes(zf.read(f"musicnn/{model}/{suffix}"))
    reader = tf.train.load_checkpoint(str(tmp / model))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez``, with sorted members and fixed timestamps so that the bytes are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="MSD_musicnn", choices=musicnn.MODELS)
    parser.add_argument("--wheel", type=Path, help="the musicnn 0.1.0 wheel (default: pip download it)")
    parser.add_argument("--out", type=Path, help="output .npz (default: genrelib/data/musicnn/<model>.npz)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = args.wheel or fetch_wheel(tmp)
        wheel_sha = sha256(wheel)
        if wheel_sha != WHEEL_SHA256:
            sys.exit(f"{wheel}: sha256 {wheel_sha} is not that of the musicnn 0.1.0 wheel ({WHEEL_SHA256})")
        variables = read_checkpoint(wheel, args.model, tmp)

    # The checkpoint also holds Adam's slots ('<var>/Adam', '<var>/Adam_1') and beta1_power, beta2_power.
    expected = musicnn.variable_shapes(len(musicnn.TAGS[args.model]))
    model_vars = {k: v for k, v in variables.items() if "Adam" not in k and not k.endswith("_power")}
    missing, unused = sorted(set(expected) - set(model_vars)), sorted(set(model_vars) - set(expected))
    if missing or unused:
        sys.exit(f"checkpoint and network disagree: missing {missing}, unused {unused}")
    for name, shape in expected.items():
        if model_vars[name].shape != shape:
            sys.exit(f"{name}: checkpoint shape {model_vars[name].shape}, network expects {shape}")
    weights = {k: v.astype(np.float32) for k, v in model_vars.items()}
    n_params = sum(v.size for v in weights.values())
    print(
        f"{args.model}: {len(variables)} checkpoint tensors, {len(weights)} model variables used "
        f"(all of them), {n_params:,} parameters"
    )

    out = args.out or musicnn.WEIGHTS_DIR / f"{args.model}.npz"
    write_npz(out, weights)
    musicnn.load_weights(args.model, path=out)  # reads back and checks every variable
    print(f"wheel {wheel.name} sha256 {wheel_sha}")
    print(f"wrote {out} ({out.stat().st_size:,} bytes) sha256 {sha256(out)}")


if __name__ == "__main__":
    main()
