"""Constants and defaults shared by every stage of the pipeline."""

from __future__ import annotations

#: The ten GTZAN genres, sorted: label ``i`` is ``GENRES[i]`` for models trained on GTZAN-shaped data.
GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)

#: Sample rate every signal is converted to (GTZAN's own rate).
SR = 22050
#: Length of the CNN input segments, as in the original notebook (ten per 30 s track).
SEGMENT_SECONDS = 3.0
#: Length of the analysis windows a long song is cut into (one GTZAN track).
WINDOW_SECONDS = 30.0
#: A trailing part of a signal at least this fraction of a window long gets a window of its own.
MIN_FRACTION = 0.5
N_FFT = 2048
HOP_LENGTH = 512
N_MFCC = 16
N_MELS = 128
#: Default seed for splits, training and demo data.
SEED = 42

#: File extensions genrelib reads (decoded by libsndfile through soundfile).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au", ".snd", ".aif", ".aiff")
#: Common audio extensions that libsndfile cannot decode; reported with a conversion hint.
UNSUPPORTED_EXTENSIONS: tuple[str, ...] = (".m4a", ".aac", ".mp4", ".wma", ".alac", ".ape")
