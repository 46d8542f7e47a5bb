"""The musicnn network itself (Pons & Serra 2019, MSD/MTT musicnn): its variables, tag names and
forward pass in TensorFlow 2 ops, from the converted weights. See :mod:`genrelib.features.musicnn`.
"""

from __future__ import annotations

import numpy as np

from genrelib.errors import ModelError

#: Tag names of each model's outputs, in the original's order (musicnn/configuration.py).
TAGS: dict[str, tuple[str, ...]] = {
    # Million Song Dataset: the 50 most frequent Last.fm tags.
    "MSD_musicnn": (
        "rock",
        "pop",
        "alternative",
        "indie",
        "electronic",
        "female vocalists",
        "dance",
        "00s",
        "alternative rock",
        "jazz",
        "beautiful",
        "metal",
        "chillout",
        "male vocalists",
        "classic rock",
        "soul",
        "indie rock",
        "Mellow",
        "electronica",
        "80s",
        "folk",
        "90s",
        "chill",
        "instrumental",
        "punk",
        "oldies",
        "blues",
        "hard rock",
        "ambient",
        "acoustic",
        "experimental",
        "female vocalist",
        "guitar",
        "Hip-Hop",
        "70s",
        "party",
        "country",
        "easy listening",
        "sexy",
        "catchy",
        "funk",
        "electro",
        "heavy metal",
        "Progressive rock",
        "60s",
        "rnb",
        "indie pop",
        "sad",
        "House",
        "happy",
    ),
    # MagnaTagATune: the 50 most frequent tags.
    "MTT_musicnn": (
        "guitar",
        "classical",
        "slow",
        "techno",
        "strings",
        "drums",
        "electronic",
        "rock",
        "fast",
        "piano",
        "ambient",
        "beat",
        "violin",
        "vocal",
        "synth",
        "female",
        "indian",
        "opera",
        "male",
        "singing",
        "vocals",
        "no vocals",
        "harpsichord",
        "loud",
        "quiet",
        "flute",
        "woman",
        "male vocal",
        "no vocal",
        "pop",
        "soft",
        "sitar",
        "solo",
        "man",
        "classic",
        "choir",
        "voice",
        "new age",
        "dance",
        "male voice",
        "female vocal",
        "beats",
        "harp",
        "cello",
        "no voice",
        "weird",
        "country",
        "metal",
        "female voice",
        "choral",
    ),
}


N_MELS = 96


#: Frames per patch: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``, as the original.
N_FRAMES = 187


#: Width of the penultimate embedding.
N_EMBED = 200


# The original's tf.compat.v1.layers names: batch norms and convolutions numbered in order of creation.
_BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default


_FRONT_TIMBRAL = (("conv2d", "batch_normalization_1", 38), ("conv2d_1", "batch_normalization_2", 67))


_FRONT_TEMPORAL = (
    ("conv2d_2", "batch_normalization_3", 128),
    ("conv2d_3", "batch_normalization_4", 64),
    ("conv2d_4", "batch_normalization_5", 32),
)


_MID = (
    ("conv2d_5", "batch_normalization_6"),
    ("conv2d_6", "batch_normalization_7"),
    ("conv2d_7", "batch_normalization_8"),
)


def variable_shapes(n_tags: int = 50) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the network's variables, as in the original checkpoint (64 for musicnn).

    Parameters
    ----------
    n_tags : int
        Number of output tags.

    Returns
    -------
    shapes : dict[str, tuple[int, ...]]
        ``{"conv2d/kernel": (7, 38, 1, 204), ...}``; kernels are ``(time, freq, in, out)``.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(name: str, n: int) -> None:
        for v in ("gamma", "beta", "moving_mean", "moving_variance"):
            shapes[f"{name}/{v}"] = (n,)

    def conv(name: str, kernel: tuple[int, ...]) -> None:
        shapes[f"{name}/kernel"] = kernel
        shapes[f"{name}/bias"] = (kernel[-1],)

    bn("batch_normalization", 1)
    for c, b, width in _FRONT_TIMBRAL:
        conv(c, (7, width, 1, 204))
        bn(b, 204)
    for c, b, length in _FRONT_TEMPORAL:
        conv(c, (length, 1, 1, 51))
        bn(b, 51)
    for i, (c, b) in enumerate(_MID):
        conv(c, (7, 561 if i == 0 else 64, 1, 64))
        bn(b, 64)
    bn("batch_normalization_9", 1506)
    shapes["dense/kernel"], shapes["dense/bias"] = (1506, N_EMBED), (N_EMBED,)
    bn("batch_normalization_10", N_EMBED)
    shapes["dense_1/kernel"], shapes["dense_1/bias"] = (N_EMBED, n_tags), (n_tags,)
    return shapes


def _toeplitz(kernel: np.ndarray, n: int) -> np.ndarray:
    """``T`` of shape (n, n, channels) such that ``x @ T`` is TF's 'same' correlation of ``x`` (n,) with
    ``kernel`` (length, channels): output t sums ``x[t + k - (length - 1) // 2] * kernel[k]``."""
    length = kernel.shape[0]
    k = np.arange(n)[:, None] - np.arange(n)[None, :] + (length - 1) // 2  # k = s - t + before
    inside = (k >= 0) & (k < length)
    return np.where(inside[..., None], kernel[np.clip(k, 0, length - 1)], 0).astype(np.float32)


class Musicnn:
    """A pretrained musicnn network: ``net(X) -> (penultimate, tags)`` for a batch of patches.

    Build it with :func:`load` (cached per process). ``weights`` holds the converted variables (numpy);
    ``n_params`` counts them.
    """

    def __init__(self, model: str, weights: dict[str, np.ndarray]):
        import tensorflow as tf

        self.model = model
        self.tags = TAGS[model]
        self.weights = weights
        self.n_params = int(sum(w.size for w in weights.values()))
        w = {name: tf.constant(value) for name, value in weights.items()}

        def bn(x, name):
            # Inference-mode batch norm, folded as TF's fused kernel does: x * scale + offset.
            scale = w[f"{name}/gamma"] * tf.math.rsqrt(w[f"{name}/moving_variance"] + _BN_EPSILON)
            return x * scale + (w[f"{name}/beta"] - w[f"{name}/moving_mean"] * scale)

        def conv(x, name, padding):
            y = tf.nn.conv2d(x, w[f"{name}/kernel"], strides=1, padding=padding)
            return tf.nn.relu(tf.nn.bias_add(y, w[f"{name}/bias"]))

        def pad_time(x):  # 'same' along time for the 7-frame kernels, as the original pads
            return tf.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]])

        # The temporal blocks' kernels as one (187, 187 * 153) matrix; the batch norms stay per block.
        temporal_matrix = tf.constant(
            np.concatenate(
                [_toeplitz(weights[f"{c}/kernel"][:, 0, 0, :], N_FRAMES) for c, _, _ in _FRONT_TEMPORAL], axis=2
            ).reshape(N_FRAMES, -1)
        )
        temporal_bias = tf.constant(np.concatenate([weights[f"{c}/bias"] for c, _, _ in _FRONT_TEMPORAL]))
        temporal_channels = int(temporal_bias.shape[0])
        offsets = np.cumsum([0] + [weights[f"{c}/bias"].size for c, _, _ in _FRONT_TEMPORAL])
        temporal_slices = [(int(i), int(j - i), b) for i, j, (_, b, _) in zip(offsets, offsets[1:], _FRONT_TEMPORAL)]

        def forward(X):
            x = bn(X[..., None], "batch_normalization")  # (B, 187, 96, 1)
            front = [tf.reduce_max(bn(conv(pad_time(x), c, "VALID"), b), axis=2) for c, b, _ in _FRONT_TIMBRAL]
            # Temporal convolutions ('same' along time, one frequency band at a time): one matrix product of
            # each band's 187 frames with the three kernels' Toeplitz matrices; twice as fast as conv2d here.
            t = tf.matmul(tf.reshape(tf.transpose(x[..., 0], [0, 2, 1]), [-1, N_FRAMES]), temporal_matrix)
            t = tf.reshape(t, [-1, N_MELS, N_FRAMES, temporal_channels])  # (B, 96, 187, 153)
            t = tf.nn.relu(tf.nn.bias_add(t, temporal_bias))
            front += [tf.reduce_max(bn(t[..., i : i + n], b), axis=1) for i, n, b in temporal_slices]
            front = tf.concat(front, axis=2)[..., None]  # (B, 187, 561, 1)
            mid = [front]
            h = front
            for i, (c, b) in enumerate(_MID):
                h_new = tf.transpose(bn(conv(pad_time(h), c, "VALID"), b), [0, 1, 3, 2])  # (B, 187, 64, 1)
                h = h_new if i == 0 else h_new + h
                mid.append(h)
            mid = tf.concat(mid, axis=2)  # (B, 187, 753, 1)
            pooled = tf.concat([tf.reduce_max(mid, axis=1), tf.reduce_mean(mid, axis=1)], axis=2)  # (B, 753, 2)
            flat = bn(tf.reshape(pooled, [-1, 2 * 753]), "batch_normalization_9")  # max, mean interleaved
            dense = tf.nn.relu(tf.matmul(flat, w["dense/kernel"]) + w["dense/bias"])
            penultimate = bn(dense, "batch_normalization_10")
            logits = tf.matmul(penultimate, w["dense_1/kernel"]) + w["dense_1/bias"]
            return penultimate, tf.sigmoid(logits)

        self._forward = tf.function(
            forward, input_signature=[tf.TensorSpec([None, N_FRAMES, N_MELS], tf.float32)], reduce_retracing=True
        )

    def __call__(self, X: np.ndarray, *, batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate embeddings and tag probabilities of patches.

        Parameters
        ----------
        X : np.ndarray [shape=(n, 187, 96)]
            Patches from :func:`patches`.
        batch_size : int
            Patches per forward pass. Small batches are fastest on CPU (intermediates stay in cache): 4 takes
        0.3-0.5 s for the ten patches of a 30 s clip on 2 busy cores, 8 or more about twice as long.

        Returns
        -------
        penultimate : np.ndarray [shape=(n, 200), dtype=float32]
        tags : np.ndarray [shape=(n, 50), dtype=float32]
            Sigmoid outputs, in the order of ``self.tags``.
        """
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (N_FRAMES, N_MELS):
            raise ModelError(
                f"musicnn takes patches of shape (n, {N_FRAMES}, {N_MELS}); got {X.shape}: "
                f"make them with genrelib.features.musicnn.patches(y, sr)"
            )
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1; got {batch_size}")
        pen, tags = [], []
        for i in range(0, len(X), batch_size):
            p, t = self._forward(X[i : i + batch_size])
            pen.append(p.numpy())
            tags.append(t.numpy())
        if not pen:
            return np.zeros((0, N_EMBED), np.float32), np.zeros((0, len(self.tags)), np.float32)
        return np.concatenate(pen), np.concatenate(tags)
