"""Write the musicnn network as an ONNX model for onnxruntime, built directly from the shipped ``.npz`` weights.

The npz stays the one source of truth: this script derives ``genrelib/data/musicnn/<model>.onnx`` from it (no
TensorFlow, no tf2onnx: the graph is written node by node with ``onnx.helper``) and records the npz's sha256 in the
model's metadata (``source_sha256``); genrelib refuses an ONNX file whose hash does not match its npz, and
``tests/features/test_musicnn.py`` checks that this script rebuilds the shipped file byte for byte.

The graph mirrors the TensorFlow port (:class:`genrelib.features.musicnn_net.Musicnn`) with one exact rewrite:
each front-end block is ``bn(relu(conv + bias))`` then a max over frequency; batch norm is an affine map per
channel and ``relu`` and ``+ bias`` are monotone, so the max is taken first, on the raw convolution, with the
kernels of channels whose batch-norm scale is negative negated (their max is then the min of the original). The
max over frequency is a ``MaxPool`` (onnxruntime keeps it in its blocked layout next to the convolution) over
output channels padded with zero kernels to a multiple of 8.

Usage (needs the ``onnx`` package, a test dependency)::

    python scripts/build_musicnn_onnx.py [--model MSD_musicnn] [--npz PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genrelib.features import musicnn  # noqa: E402
from genrelib.features.musicnn_net import _BN_EPSILON, _MID, N_EMBED, N_FRAMES, N_MELS  # noqa: E402
from genrelib.features.musicnn_net import _FRONT_TEMPORAL as _TEMPORAL  # noqa: E402
from genrelib.features.musicnn_net import _FRONT_TIMBRAL as _TIMBRAL  # noqa: E402

OPSET = 17
_FRONT_TIMBRAL = tuple((conv, bn) for conv, bn, _ in _TIMBRAL)
_FRONT_TEMPORAL = tuple((conv, bn) for conv, bn, _ in _TEMPORAL)


def _bn(weights, name):
    scale = weights[f"{name}/gamma"] * (
        np.float32(1) / np.sqrt(weights[f"{name}/moving_variance"] + np.float32(_BN_EPSILON))
    )
    offset = weights[f"{name}/beta"] - weights[f"{name}/moving_mean"] * scale
    return scale.astype(np.float32), offset.astype(np.float32)


def build(weights: dict[str, np.ndarray], *, source_sha256: str = ""):
    """The ONNX ``ModelProto`` of the network with these weights.

    Parameters
    ----------
    weights : dict[str, np.ndarray]
        The checkpoint's 64 variables (``genrelib.musicnn.load_weights``).
    source_sha256 : str
        Hash of the npz the weights came from, stored in the model's metadata.

    Returns
    -------
    model : onnx.ModelProto
        Input ``X`` (n, 187, 96) float32; outputs ``penultimate`` (n, 200) and ``tags`` (n, n_tags).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list = []
    nodes: list = []
    counter = [0]

    def const(value, name=None) -> str:
        counter[0] += 1
        name = name or f"c{counter[0]}"
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op, inputs, **attrs) -> str:
        counter[0] += 1
        out = f"{op.lower()}{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def affine(x, scale, offset, shape) -> str:
        return node("Add", [node("Mul", [x, const(scale.reshape(shape))]), const(offset.reshape(shape))])

    def pad_out(w):
        # Output channels padded with zero kernels to a multiple of 8 (onnxruntime's NCHWc block on AVX2),
        # so that the MaxPool after the convolution runs in the blocked layout too (see freq_max).
        extra = -w.shape[0] % 8
        return np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)]) if extra else w

    def freq_max(y, width, channels) -> str:
        # Max over the last (frequency) axis as a MaxPool, not a ReduceMax: onnxruntime runs MaxPool in its
        # blocked NCHWc layout (channels a multiple of 8), next to the convolution, so the convolution's large
        # output is not reordered to NCHW first (that reorder took a fifth of the time); then the padding
        # channels are dropped.
        pooled = node("MaxPool", [y], kernel_shape=[1, width])  # (n, padded channels, 187, 1)
        y = node("Squeeze", [pooled, const(np.array([3], np.int64))])
        return node(
            "Slice",
            [y, const(np.array([0], np.int64)), const(np.array([channels], np.int64)), const(np.array([1], np.int64))],
        )

    def front_tail(conv_max, sign, bias, scale, offset, shape) -> str:
        # bn(relu(max_f(conv) + bias)), with the max of sign-flipped channels turned back into a min.
        h = node("Add", [node("Mul", [conv_max, const(sign.reshape(shape))]), const(bias.reshape(shape))])
        return affine(node("Relu", [h]), scale, offset, shape)

    s, o = _bn(weights, "batch_normalization")
    x = affine("X", s, o, (1,))  # (n, 187, 96)
    x4 = node("Unsqueeze", [x, const(np.array([1], np.int64))])  # (n, 1, 187, 96)
    front = []
    for conv, bn in _FRONT_TIMBRAL:
        kernel = weights[f"{conv}/kernel"]  # (7, width, 1, 204)
        scale, offset = _bn(weights, bn)
        sign = np.where(scale < 0, -1, 1).astype(np.float32)
        w = (kernel * sign).transpose(3, 2, 0, 1)  # (204, 1, 7, width)
        y = node("Conv", [x4, const(pad_out(w))], pads=[3, 0, 3, 0])  # (n, 208, 187, 96 - width + 1)
        y = freq_max(y, N_MELS - kernel.shape[1] + 1, w.shape[0])  # (n, 204, 187)
        front.append(front_tail(y, sign, weights[f"{conv}/bias"], scale, offset, (-1, 1)))
    for conv, bn in _FRONT_TEMPORAL:  # 'same' along time, one frequency band at a time
        kernel = weights[f"{conv}/kernel"]  # (length, 1, 1, 51)
        scale, offset = _bn(weights, bn)
        sign = np.where(scale < 0, -1, 1).astype(np.float32)
        length = kernel.shape[0]
        before = (length - 1) // 2
        w = (kernel * sign).transpose(3, 2, 0, 1)  # (51, 1, length, 1)
        y = node("Conv", [x4, const(pad_out(w))], pads=[before, 0, length - 1 - before, 0])  # (n, 56, 187, 96)
        y = freq_max(y, N_MELS, w.shape[0])  # (n, 51, 187)
        front.append(front_tail(y, sign, weights[f"{conv}/bias"], scale, offset, (-1, 1)))
    h = node("Concat", front, axis=1)  # (n, 561, 187)
    mid = [h]
    for i, (conv, bn) in enumerate(_MID):
        kernel = weights[f"{conv}/kernel"]  # (7, channels_in, 1, 64)
        w = kernel[:, :, 0, :].transpose(2, 1, 0)  # (64, channels_in, 7)
        y = node("Relu", [node("Conv", [h, const(w), const(weights[f"{conv}/bias"])], pads=[3, 3])])
        y = affine(y, *_bn(weights, bn), (-1, 1))  # (n, 64, 187)
        h = y if i == 0 else node("Add", [y, h])
        mid.append(h)
    m = node("Concat", mid, axis=1)  # (n, 753, 187)
    mx = node("ReduceMax", [m], axes=[2], keepdims=1)  # (n, 753, 1)
    mn = node("ReduceMean", [m], axes=[2], keepdims=1)
    flat = node("Reshape", [node("Concat", [mx, mn], axis=2), const(np.array([-1, 2 * 753], np.int64))])
    flat = affine(flat, *_bn(weights, "batch_normalization_9"), (-1,))
    dense = node("Relu", [node("Gemm", [flat, const(weights["dense/kernel"]), const(weights["dense/bias"])])])
    s, o = _bn(weights, "batch_normalization_10")
    nodes.append(helper.make_node("Add", [node("Mul", [dense, const(s)]), const(o)], ["penultimate"]))
    logits = node("Gemm", ["penultimate", const(weights["dense_1/kernel"]), const(weights["dense_1/bias"])])
    nodes.append(helper.make_node("Sigmoid", [logits], ["tags"]))
    n_tags = weights["dense_1/bias"].size
    graph = helper.make_graph(
        nodes,
        "musicnn",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", N_FRAMES, N_MELS])],
        [
            helper.make_tensor_value_info("penultimate", TensorProto.FLOAT, ["n", N_EMBED]),
            helper.make_tensor_value_info("tags", TensorProto.FLOAT, ["n", n_tags]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="genrelib")
    model.ir_version = 8
    helper.set_model_props(model, {"source_sha256": source_sha256})
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="MSD_musicnn", choices=musicnn.MODELS)
    p.add_argument("--npz", default=None, help="weights file (default: genrelib's <model>.npz)")
    p.add_argument("--out", default=None, help="output .onnx (default: genrelib/data/musicnn/<model>.onnx)")
    args = p.parse_args(argv)
    npz = Path(args.npz) if args.npz else musicnn.weights_path(args.model)
    weights = musicnn.load_weights(args.model, path=npz)
    sha = hashlib.sha256(npz.read_bytes()).hexdigest()
    out = Path(args.out) if args.out else musicnn.onnx_path(args.model)
    out.write_bytes(build(weights, source_sha256=sha).SerializeToString())
    print(f"{npz} (sha256 {sha[:12]}) -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
