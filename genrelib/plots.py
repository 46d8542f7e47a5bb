"""Figures. Every ``plot_*`` function returns a matplotlib Figure and never shows or saves it.

Pass ``ax`` to draw into an existing axes; otherwise a new figure is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from genrelib.config import HOP_LENGTH, N_FFT, SR


def _axes(ax=None, figsize=(7, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _close(fig):
    # Figures are returned, not shown: detach them from pyplot so loops over many plots do not pile up.
    import matplotlib.pyplot as plt

    plt.close(fig)
    return fig


def plot_class_distribution(counts: Mapping[str, int], *, title: str = "Tracks per genre"):
    """Bar chart and pie chart of tracks per genre (the original notebook drew the pie)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    names, values = list(counts), list(counts.values())
    a1.bar(names, values, color="tab:blue")
    a1.set_xlabel("genre")
    a1.set_ylabel("tracks")
    a1.tick_params(axis="x", rotation=45)
    a1.set_title(title)
    a2.pie(values, labels=names, autopct="%1.0f%%", startangle=90, counterclock=False)
    a2.set_title("share of tracks")
    return _close(fig)


def plot_waveform(y: np.ndarray, sr: int = SR, *, title: str = "Waveform", ax=None):
    """Amplitude over time."""
    fig, ax = _axes(ax, (9, 3))
    ax.plot(np.arange(len(y)) / sr, y, lw=0.4)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    ax.set_xlim(0, len(y) / sr)
    ax.set_title(title)
    return _close(fig)


def plot_waveforms(signals: Mapping[str, np.ndarray], sr: int = SR, *, cols: int = 2):
    """One waveform per genre in a grid."""
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(signals) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(11, 1.9 * rows), sharex=True, sharey=True, layout="constrained", squeeze=False
    )
    for ax, (name, y) in zip(axes.flat, signals.items()):
        ax.plot(np.arange(len(y)) / sr, y, lw=0.3)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("amplitude", fontsize=8)
    for ax in axes.flat[len(signals) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.suptitle("Waveform of one track per genre")
    return _close(fig)


def plot_spectrum(y: np.ndarray, sr: int = SR, *, title: str = "Magnitude spectrum (FFT)", ax=None):
    """FFT magnitude of the whole signal in dB over frequency (log axis)."""
    fig, ax = _axes(ax)
    mag = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    ax.semilogx(freqs[1:], 20 * np.log10(mag[1:] / mag.max() + 1e-12), lw=0.5)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("magnitude (dB re max)")
    ax.set_xlim(20, sr / 2)
    ax.set_title(title)
    return _close(fig)


def plot_spectrogram(
    y: np.ndarray,
    sr: int = SR,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    title: str = "Spectrogram (STFT, dB)",
    ax=None,
):
    """STFT magnitude in dB relative to the maximum, log-frequency axis."""
    import librosa
    import librosa.display

    fig, ax = _axes(ax, (9, 4))
    S_db = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)), ref=np.max)
    img = librosa.display.specshow(S_db, sr=sr, hop_length=hop_length, x_axis="s", y_axis="log", ax=ax)
    fig.colorbar(img, ax=ax, format="%+2.0f dB")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, log scale)")
    ax.set_title(title)
    return _close(fig)


def plot_mel_filterbank(sr: int = SR, *, n_fft: int = N_FFT, n_mels: int = 128, ax=None):
    """The triangular mel filters over linear frequency."""
    import librosa

    fig, ax = _axes(ax)
    M = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    ax.plot(freqs, M[:: max(1, n_mels // 32)].T, lw=0.7)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("filter weight")
    ax.set_title(f"Mel filterbank (every {max(1, n_mels // 32)}th of {n_mels} filters)")
    return _close(fig)


def plot_mel_spectrogram(
    y: np.ndarray,
    sr: int = SR,
    *,
    n_mels: int = 128,
    hop_length: int = HOP_LENGTH,
    title: str = "Mel spectrogram (dB)",
    ax=None,
):
    """Mel power spectrogram in dB relative to the maximum."""
    import librosa
    import librosa.display

    fig, ax = _axes(ax, (9, 4))
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, hop_length=hop_length)
    img = librosa.display.specshow(
        librosa.power_to_db(S, ref=np.max), sr=sr, hop_length=hop_length, x_axis="s", y_axis="mel", ax=ax
    )
    fig.colorbar(img, ax=ax, format="%+2.0f dB")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, mel scale)")
    ax.set_title(title)
    return _close(fig)


def plot_mfcc(M: np.ndarray, sr: int = SR, *, hop_length: int = HOP_LENGTH, title: str = "MFCCs", ax=None):
    """MFCCs as an image: ``M`` is ``(frames, n_mfcc)`` (genrelib's time-first layout)."""
    fig, ax = _axes(ax, (9, 3.5))
    frames = M.shape[0]
    img = ax.imshow(
        M.T, origin="lower", aspect="auto", cmap="magma", extent=(0, frames * hop_length / sr, -0.5, M.shape[1] - 0.5)
    )
    fig.colorbar(img, ax=ax, label="coefficient value")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MFCC index")
    ax.set_title(title)
    return _close(fig)


def plot_confusion_matrix(
    cm: np.ndarray, genres: Sequence[str], *, normalize: bool = True, title: str = "Confusion matrix", ax=None
):
    """Confusion matrix labelled with genre names; rows are true genres, columns predictions."""
    fig, ax = _axes(ax, (7.5, 6.5))
    cm = np.asarray(cm, dtype=float)
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    img = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(img, ax=ax, label="share of the true genre" if normalize else "count")
    ax.set_xticks(range(len(genres)), genres, rotation=45, ha="right")
    ax.set_yticks(range(len(genres)), genres)
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j] > 0:
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if cm[i, j] > 0.6 * cm.max() else "black",
                )
    ax.set_title(title)
    return _close(fig)


def plot_history(
    history: Mapping[str, Sequence[float]], *, title: str = "Training curves", loss_label: str = "cross-entropy"
):
    """Loss and accuracy per epoch, training and validation; ``loss_label`` names what the loss is made of
    (:func:`genrelib.training.report.loss_label` of the model)."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for key, ax in (("loss", a1), ("accuracy", a2)):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                vals = history[prefix + key]
                ax.plot(
                    range(1, len(vals) + 1), vals, style, marker="o", ms=3, label="validation" if prefix else "training"
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    a1.set_title(f"loss ({loss_label})")
    a2.set_title("segment accuracy")
    fig.suptitle(title)
    return _close(fig)


def plot_timeline(
    starts: np.ndarray,
    proba: np.ndarray,
    genres: Sequence[str],
    *,
    title: str = "Genre over time",
    top: int = 4,
    ax=None,
    window_seconds: float = 30.0,
):
    """Probability of the ``top`` most likely genres per window over the song.

    ``window_seconds``: how long each window is (30 s, or 15 s for the points of a ``musicnn`` model's timeline,
    one every 3 s); the x axis is each window's start. A song of a single window has no "over time": it is drawn
    as a bar chart of every genre's probability.
    """
    fig, ax = _axes(ax, (9, 3.2))
    if len(starts) == 1:
        order = np.argsort(-proba[0])
        ax.bar([genres[k] for k in order], proba[0, order], color="tab:blue")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_xlabel(f"genre (one {window_seconds:g} s window)")
        ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(title.replace("over time", "probabilities"))
        return _close(fig)
    order = np.argsort(-proba.mean(axis=0))[:top]
    for k in order:
        ax.plot(starts, proba[:, k], marker="o", ms=3, label=genres[k])
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"start of each {window_seconds:g} s window (s)")
    ax.set_ylabel("probability")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    return _close(fig)


def plot_top_genres(proba: np.ndarray, genres: Sequence[str], *, top: int = 5, title: str = "Top genres", ax=None):
    """A horizontal bar per genre of the ``top`` most likely ones, best at the top, its probability written beside
    it (the web page's answer for one song)."""
    fig, ax = _axes(ax, (5, 2.6))
    order = np.argsort(-np.asarray(proba))[:top][::-1]
    values = np.asarray(proba)[order]
    ax.barh([genres[k] for k in order], values, color="tab:blue")
    for i, v in enumerate(values):
        ax.text(min(v + 0.02, 0.9), i, f"{v:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title(title)
    return _close(fig)


#: Methods of :func:`plot_embedding_map`.
MAP_METHODS = ("pca", "tsne")


def plot_embedding_map(
    X: np.ndarray,
    genres_of_rows: Sequence[str],
    *,
    method: str = "pca",
    track_ids: Sequence[str] | None = None,
    title: str = "Feature map",
    seed: int = 0,
    ax=None,
):
    """A 2-D map of feature rows (or of tracks), one colour per genre.

    Every feature is standardized (zero mean, unit variance over the points), then reduced to two dimensions by
    PCA, or by t-SNE (after PCA to at most 50 dimensions; perplexity ``min(30, (n_points - 1) / 3)``, which fits
    small data; fixed ``seed``).

    Parameters
    ----------
    X : np.ndarray [shape=(n_rows, ...)]
        Feature rows; each row is flattened (an MFCC or mel segment becomes one long vector).
    genres_of_rows : sequence of str [shape=(n_rows,)]
        Genre of each row (``""`` for unlabelled rows, drawn grey as "unlabelled").
    method : {"pca", "tsne"}
    track_ids : sequence of str [shape=(n_rows,)], optional
        Track of each row: the rows of a track are averaged first, so the map has one point per track.
    title : str
    seed : int
        t-SNE's random state (PCA is deterministic).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Axes labelled with the components (PCA: with their share of the variance), a legend of the genres.

    Raises
    ------
    FeatureError
        Unknown method, rows and genres of different lengths, or fewer than 3 points.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from genrelib.errors import FeatureError

    if method not in MAP_METHODS:
        raise FeatureError(f"unknown map method {method!r}; choose one of {', '.join(MAP_METHODS)}")
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(len(X), -1)
    genres_of_rows = np.asarray(genres_of_rows, dtype=str)
    if len(genres_of_rows) != len(X):
        raise FeatureError(f"{len(X)} feature rows but {len(genres_of_rows)} genres; give one genre per row")
    if track_ids is not None:
        track_ids = np.asarray(track_ids, dtype=str)
        if len(track_ids) != len(X):
            raise FeatureError(f"{len(X)} feature rows but {len(track_ids)} track ids; give one id per row")
        tracks, first, inverse = np.unique(track_ids, return_index=True, return_inverse=True)
        sums = np.zeros((len(tracks), X.shape[1]))
        np.add.at(sums, inverse, X)
        X = sums / np.bincount(inverse)[:, None]
        genres_of_rows = genres_of_rows[first]
    points = "tracks" if track_ids is not None else "rows"
    if len(X) < 3:
        raise FeatureError(f"a feature map needs at least 3 {points}; got {len(X)}")
    Z = StandardScaler().fit_transform(X)
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        Y = pca.fit_transform(Z)
        share = pca.explained_variance_ratio_
        xlabel, ylabel = (f"PC {i + 1} ({share[i]:.0%} of variance)" for i in range(2))
        how = "PCA"
    else:
        from sklearn.manifold import TSNE

        if Z.shape[1] > 50:  # the usual first step: t-SNE's neighbours on the main directions, not the noise
            Z = PCA(n_components=min(50, len(Z)), random_state=seed).fit_transform(Z)
        perplexity = max(1.0, min(30.0, (len(Z) - 1) / 3))
        Y = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(Z)
        xlabel, ylabel = "t-SNE 1", "t-SNE 2"
        how = f"t-SNE (perplexity {perplexity:.3g})"
    fig, ax = _axes(ax, (7.5, 5.5))
    names = sorted(set(genres_of_rows.tolist()) - {""})
    colours = dict(zip(names, _genre_colours(len(names))))
    for name in names + ([""] if "" in genres_of_rows else []):
        mask = genres_of_rows == name
        ax.scatter(
            Y[mask, 0],
            Y[mask, 1],
            s=22,
            alpha=0.85,
            color=colours.get(name, "0.6"),
            label=name or "unlabelled",
            edgecolors="none",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\n{len(Y)} {points}, {how} of standardized features", fontsize=10)
    ax.legend(title="genre", loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title_fontsize=9, frameon=False)
    return _close(fig)


def _genre_colours(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_augmented_examples(
    examples: Mapping[str, Mapping[str, np.ndarray]],
    *,
    kind: str = "mel",
    sr: int = SR,
    hop_length: int = HOP_LENGTH,
    title: str = "Augmented training examples",
):
    """Segments side by side with their augmented versions: one row per track, the original first.

    Parameters
    ----------
    examples : mapping
        ``{track_id: {label: S}}`` with ``S`` of shape ``(frames, bands)`` (time first), as
        :func:`genrelib.training.report.augmented_examples` gives them; the first label of each track is its original.
    kind : str
        ``mel`` (log-mel dB) or ``mfcc``: names the vertical axis and the colour scale.

    Each row shares one colour scale, so that a gain or noise shows as a change of colour.
    """
    import textwrap

    import matplotlib.pyplot as plt

    rows = list(examples.items())
    cols = max(len(v) for _, v in rows)
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(2.9 * cols + 0.8, 2.6 * len(rows)), layout="constrained", squeeze=False
    )
    for r, (track_id, variants) in enumerate(rows):
        values = np.concatenate([np.ravel(S) for S in variants.values()])
        vmin, vmax = np.percentile(values, [1, 99.5])
        img = None
        for c, (label, S) in enumerate(variants.items()):
            ax = axes[r, c]
            frames, bands = S.shape
            img = ax.imshow(
                np.asarray(S).T,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=vmin,
                vmax=vmax,
                extent=(0, frames * hop_length / sr, -0.5, bands - 0.5),
            )
            ax.set_title(textwrap.fill(label, 34), fontsize=8)
            ax.set_xlabel("time (s)", fontsize=8)
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel(f"{track_id}\n{'MFCC index' if kind == 'mfcc' else 'mel band'}", fontsize=8)
        for ax in axes[r, len(variants) :]:
            ax.axis("off")
        fig.colorbar(img, ax=axes[r, :].tolist(), label="dB" if kind == "mel" else "coefficient value", shrink=0.9)
    fig.suptitle(title)
    return _close(fig)
