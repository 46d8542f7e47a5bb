"""Write the musicnn network as an ONNX model for onnxruntime, built directly from the shipped ``.npz`` weights.

The npz stays the one source of truth: this script derives ``genrelib/data/musicnn/<model>.onnx`` from it (no
TensorFlow, no tf2onnx: the graph is written node by node with ``onnx.helper``) and records the npz's sha256 in the
model's metadata (``source_sha256``); genrelib refuses an ONNX file whose hash does not match its npz, and
``tests/features/test_musicnn.py`` checks that this script rebuilds the shipped file byte for byte.

The graph mirrors the TensorFlow port (:class:`genrelib.features.musicnn_net.Musicnn`) with two rewrites that
change the arithmetic, not the function (outputs within 1e-5 of the port's in float32):

- Each front-end block is ``bn(relu(conv + bias))`` then a max over frequency; batch norm is an affine map per
  channel and ``relu`` and ``+ bias`` are monotone, so the max is taken first, on the raw convolution, with the
  kernels of channels whose batch-norm scale is negative negated (their max is then the min of the original).
- The two timbral convolutions (kernels 7 frames x 38 or 67 bands, 70% of the network's multiply-adds) use
  Winograd's minimal filtering along time, F(4, 7) (Lavin & Gray 2016, "Fast algorithms for convolutional neural
  networks"): four output frames from ten transformed input frames instead of 4 x 7 products, so 10/28 of the
  multiply-adds, at the cost of two cheap linear transforms. The transforms are the exact Toom-Cook matrices of
  the points 0, +-1, +-2, +-1/2, 4, -1/4 and infinity (:func:`toom_cook`, checked in exact arithmetic).
  Measured on the 2-core box here: the network took 21 ms per patch instead of 31 on one thread.

The temporal convolutions' output channels are padded with zero kernels to a multiple of 16 (onnxruntime's NCHWc
block with AVX-512; a multiple of AVX2's 8 too), so that the ``MaxPool`` over frequency after them runs in the
blocked layout, next to the convolution, without a reorder to NCHW.

Usage (needs the ``onnx`` package, a test dependency)::

    python scripts/build_musicnn_onnx.py [--model MSD_musicnn] [--npz PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genrelib.features import musicnn  # noqa: E402
from genrelib.features.musicnn_net import _BN_EPSILON, _MID, N_EMBED, N_FRAMES, N_MELS  # noqa: E402
from genrelib.features.musicnn_net import _FRONT_TEMPORAL as _TEMPORAL  # noqa: E402
from genrelib.features.musicnn_net import _FRONT_TIMBRAL as _TIMBRAL  # noqa: E402

OPSET = 17
WINOGRAD_M = 4  # output frames per Winograd tile of the timbral convolutions
WINOGRAD_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2), 4, Fraction(-1, 4))  # and infinity
BLOCK = 16  # output channels padded to a multiple of this (onnxruntime's NCHWc block on AVX-512)
_FRONT_TIMBRAL = tuple((conv, bn) for conv, bn, _ in _TIMBRAL)
_FRONT_TEMPORAL = tuple((conv, bn) for conv, bn, _ in _TEMPORAL)


def _inverse(a: list[list[Fraction]]) -> list[list[Fraction]]:
    """Inverse of a square matrix of fractions, by Gauss-Jordan elimination (exact)."""
    n = len(a)
    m = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for c in range(n):
        p = next(r for r in range(c, n) if m[r][c] != 0)
        m[c], m[p] = m[p], m[c]
        m[c] = [v / m[c][c] for v in m[c]]
        for r in range(n):
            if r != c and m[r][c] != 0:
                m[r] = [v - m[r][c] * w for v, w in zip(m[r], m[c])]
    return [row[n:] for row in m]


def toom_cook(m: int, r: int, points=WINOGRAD_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Winograd's minimal filtering F(m, r) for correlation: ``y = AT @ ((G @ g) * (BT @ d))`` gives the ``m``
    outputs ``y[i] = sum_j g[j] * d[i + j]`` of an ``r``-tap filter ``g`` on ``m + r - 1`` inputs ``d``.

    Built by Toom-Cook from the finite ``points`` (``m + r - 2`` of them) and infinity, in exact arithmetic:
    with ``V_k`` the evaluation matrix of polynomials of ``k`` coefficients at the points (infinity's row picks the
    leading coefficient), correlation is the transpose of convolution, ``AT = V_m^T``, ``G = V_r``,
    ``BT = V_(m+r-1)^-T``; row ``k`` of ``G`` is divided and row ``k`` of ``BT`` multiplied by
    ``prod_(l != k) (p_k - p_l)`` (Lavin & Gray's scaling, which keeps ``BT``'s entries small). The identity is
    checked exactly before the matrices are returned as float64.

    Returns
    -------
    AT : np.ndarray [shape=(m, m + r - 1)]
    G : np.ndarray [shape=(m + r - 1, r)]
    BT : np.ndarray [shape=(m + r - 1, m + r - 1)]
    """
    a = m + r - 1
    pts = [Fraction(p) for p in points]
    if len(pts) != a - 1 or len(set(pts)) != len(pts):
        raise ValueError(f"F({m}, {r}) needs {a - 1} distinct finite points; got {points}")

    def evaluation(k):
        return [[p**j for j in range(k)] for p in pts] + [[Fraction(int(j == k - 1)) for j in range(k)]]

    scale = [Fraction(1)] * a
    for i, p in enumerate(pts):
        for q in pts[:i] + pts[i + 1 :]:
            scale[i] *= p - q
    va_inv = _inverse(evaluation(a))
    at = [list(col) for col in zip(*evaluation(m))]
    g = [[v / scale[k] for v in row] for k, row in enumerate(evaluation(r))]
    bt = [[va_inv[col][k] * scale[k] for col in range(a)] for k in range(a)]
    for i in range(m):
        for j in range(r):
            for col in range(a):
                if sum(at[i][k] * g[k][j] * bt[k][col] for k in range(a)) != int(col == i + j):
                    raise ArithmeticError(f"F({m}, {r}) from {points} is not an identity at ({i}, {j}, {col})")
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (at, g, bt))


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
        # Output channels padded with zero kernels to a multiple of BLOCK (onnxruntime's NCHWc block), so that
        # the MaxPool after the convolution runs in the blocked layout too (see freq_max).
        extra = -w.shape[0] % BLOCK
        return np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)]) if extra else w

    def winograd_freq_max(v, w, at, g) -> str:
        # max over frequency of the timbral convolution of kernels w (channels, 7, width), 'same' along time,
        # from the transformed input frames v (n, a, tiles, 96): per transformed frame k, a convolution along
        # frequency with the transformed kernels G w (a grouped convolution, one group per k), then the inverse
        # transform AT over k (a MatMul), the max over frequency, and the tiles' frames back in order.
        (m, a), (channels, _, width) = at.shape, w.shape
        u = (g[:, None, :, None] * w[None].astype(np.float64)).sum(axis=2).astype(np.float32)  # (a, channels, width)
        mk = node("Conv", [v, const(u.reshape(a * channels, 1, 1, width))], group=a)  # (n, a*channels, tiles, f)
        mk = node("Reshape", [mk, const(np.array([0, a, -1], np.int64))])
        y = node("MatMul", [const(at.astype(np.float32)), mk])  # (n, m, channels*tiles*f)
        tiles = -(-N_FRAMES // m)
        y = node("Reshape", [y, const(np.array([0, m, channels, tiles, N_MELS - width + 1], np.int64))])
        y = node("Transpose", [node("ReduceMax", [y], axes=[4], keepdims=0)], perm=[0, 2, 3, 1])  # (n, c, tiles, m)
        y = node("Reshape", [y, const(np.array([0, channels, tiles * m], np.int64))])
        return node(
            "Slice",
            [y, const(np.array([0], np.int64)), const(np.array([N_FRAMES], np.int64)), const(np.array([2], np.int64))],
        )

    def freq_max(y, width, channels) -> str:
        # Max over the last (frequency) axis as a MaxPool, not a ReduceMax: onnxruntime runs MaxPool in its
        # blocked NCHWc layout (channels a multiple of BLOCK), next to the convolution, so the convolution's large
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
    at, g, bt = toom_cook(WINOGRAD_M, 7)
    tiles = -(-N_FRAMES // WINOGRAD_M)
    # The input frames of every tile, transformed (BT): a strided convolution along time, shared by both blocks;
    # 'same' padding of 3 frames, and zeros after the last frame up to whole tiles.
    v = node(
        "Conv",
        [x4, const(bt.astype(np.float32)[:, None, :, None])],
        strides=[WINOGRAD_M, 1],
        pads=[3, 0, tiles * WINOGRAD_M + 6 - N_FRAMES - 3, 0],
    )  # (n, 10, 47, 96)
    for conv, bn in _FRONT_TIMBRAL:
        kernel = weights[f"{conv}/kernel"]  # (7, width, 1, 204)
        scale, offset = _bn(weights, bn)
        sign = np.where(scale < 0, -1, 1).astype(np.float32)
        w = (kernel * sign)[:, :, 0, :].transpose(2, 0, 1)  # (204, 7, width)
        y = winograd_freq_max(v, w, at, g)  # (n, 204, 187)
        front.append(front_tail(y, sign, weights[f"{conv}/bias"], scale, offset, (-1, 1)))
    for conv, bn in _FRONT_TEMPORAL:  # 'same' along time, one frequency band at a time
        kernel = weights[f"{conv}/kernel"]  # (length, 1, 1, 51)
        scale, offset = _bn(weights, bn)
        sign = np.where(scale < 0, -1, 1).astype(np.float32)
        length = kernel.shape[0]
        before = (length - 1) // 2
        w = (kernel * sign).transpose(3, 2, 0, 1)  # (51, 1, length, 1)
        y = node("Conv", [x4, const(pad_out(w))], pads=[before, 0, length - 1 - before, 0])  # (n, 64, 187, 96)
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
