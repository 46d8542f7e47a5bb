"""Figures: returned, never shown; labelled so that a reader can tell what they show."""

import numpy as np
import pytest

from genrelib import plots
from genrelib.errors import FeatureError


def _rows(n_tracks=12, rows_per_track=5, shape=(13, 4), genres=("rock", "jazz", "blues"), seed=0):
    """Feature rows of ``n_tracks`` tracks, ``rows_per_track`` each; tracks of a genre share an offset."""
    rng = np.random.default_rng(seed)
    track_genre = [genres[i % len(genres)] for i in range(n_tracks)]
    X = np.concatenate([rng.normal(genres.index(g), 1.0, size=(rows_per_track, *shape)) for g in track_genre])
    track_ids = np.repeat([f"{g}/{g}.{i:05d}.wav" for i, g in enumerate(track_genre)], rows_per_track)
    row_genres = np.repeat(track_genre, rows_per_track)
    return X.astype(np.float32), row_genres, track_ids


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_map_has_one_point_per_track_and_a_legend_of_genres(method):
    X, genres, tracks = _rows()
    fig = plots.plot_embedding_map(X, genres, track_ids=tracks, method=method, title="mfcc features")
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 12  # 60 rows, 12 tracks
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["blues", "jazz", "rock"]
    assert ax.get_title().startswith("mfcc features\n12 tracks")
    assert ax.get_xlabel() and ax.get_ylabel()
    if method == "pca":
        assert ax.get_xlabel().startswith("PC 1 (") and "of variance" in ax.get_ylabel()
    # a point is its track's mean row: PCA of the per-track means gives the same map
    if method == "pca":
        again = plots.plot_embedding_map(X.reshape(12, 5, -1).mean(axis=1), genres[::5], method="pca")
        a = np.concatenate([c.get_offsets() for c in ax.collections])
        b = np.concatenate([c.get_offsets() for c in again.axes[0].collections])
        np.testing.assert_allclose(np.sort(a, axis=0), np.sort(b, axis=0), atol=1e-6)
    # deterministic: the same input draws the same map
    twice = plots.plot_embedding_map(X, genres, track_ids=tracks, method=method)
    np.testing.assert_allclose(
        np.concatenate([c.get_offsets() for c in twice.axes[0].collections]),
        np.concatenate([c.get_offsets() for c in ax.collections]),
    )


def test_embedding_map_without_track_ids_draws_every_row_and_marks_unlabelled():
    X, genres, _ = _rows(n_tracks=3, rows_per_track=2)
    genres = genres.copy()
    genres[0] = ""
    fig = plots.plot_embedding_map(X, genres)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["blues", "jazz", "rock", "unlabelled"]


def test_embedding_map_bad_input():
    X, genres, tracks = _rows(n_tracks=2)
    with pytest.raises(FeatureError, match="unknown map method 'umap'; choose one of pca, tsne"):
        plots.plot_embedding_map(X, genres, method="umap")
    with pytest.raises(FeatureError, match="at least 3 tracks; got 2"):
        plots.plot_embedding_map(X, genres, track_ids=tracks)
    with pytest.raises(FeatureError, match="10 feature rows but 3 genres"):
        plots.plot_embedding_map(X, genres[:3])


def test_spectrograms_say_their_time_unit():
    # issue 21 #21: the STFT spectrogram's time axis had no unit
    y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype("float32")
    for fig in (plots.plot_spectrogram(y), plots.plot_mel_spectrogram(y)):
        ax = fig.axes[0]
        assert ax.get_xlabel() == "time (s)" and "Hz" in ax.get_ylabel()
