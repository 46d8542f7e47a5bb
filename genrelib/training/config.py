"""The training configuration: one frozen :class:`TrainConfig` (family, split, epochs, optimiser, augmentation, seeds),
and the feature configuration each family takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genrelib.config import SEED
from genrelib.datasets.splits import SPLIT_FILE_FORMAT
from genrelib.errors import DatasetError, ModelError
from genrelib.features.config import FeatureConfig
from genrelib.models import FAMILIES, KERAS_FAMILIES, check_family


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (logged as parameters).

    Attributes
    ----------
    family : str
        ``seed_cnn``, ``mel_cnn``, ``crnn``, ``summary`` or ``musicnn``.
    epochs : int
        Upper bound on epochs (Keras families); early stopping usually ends sooner.
    batch_size : int
    patience : int
        Epochs without improvement of the validation loss before stopping; the best weights are restored.
    learning_rate : float or None
        None: the family's default (1e-4 for seed_cnn as in the notebook, 1e-3 for the others).
    class_weights : bool
        Weight classes inversely to their frequency.
    seed : int
        Seeds the split, weight initialization, shuffling and dropout.
    split : str
        ``random``, ``gtzan-ff`` or ``file`` (a user's lists, ``split_file``).
    split_file : str
        The user's train / valid / test lists (:func:`genrelib.datasets.splits.read_split_file`: a folder of
        ``train*.txt``, ``valid*.txt``, ``test*.txt``, three files ``train.txt,valid.txt,test.txt``, or one file of
        ``<part> <track>`` lines). Given with the default ``split="random"``, the split becomes ``file``.
    test_size, valid_size : float
        Random split: test share of all tracks, validation share of the rest.
    force : bool
        Train even when :func:`split_problems` finds the split unfit for an honest test result (a genre with
        no training or no test tracks, a tiny test part); the problems are logged and kept in ``model.info``.
    dropout, l2 : float or None
        Keras families: the dropout rate before the output (seed_cnn: after each dense layer) and seed_cnn's L2
        factor; None: the family's default (0.3; 0.001).
    filters : int or None
        Keras families: filters of the first convolution block (the later blocks keep the family's ratios:
        mel_cnn f-2f-2f-4f, crnn f-2f-2f, seed_cnn f-f-f); None: the family's default (32).
    logreg_c : float or None
        summary and musicnn: train only the logistic regression with this C instead of choosing among the
        candidates on validation; None: choose (the default).
    time_masks, freq_masks, time_mask_width, freq_mask_width, gain_db, noise_std, mixup
        On-the-fly augmentation of the training segments (Keras families; :class:`genrelib.training.augment.FeatureAugment`):
        SpecAugment masks (how many per segment, widest as a share of the frames / bands), random gain in +- dB,
        Gaussian noise (sd in dB), mixup alpha. 0: off (the default).
    aug_copies, pitch_shift, time_stretch, time_shift, noise_snr
        Precomputed, cached waveform copies of each training track (Keras families;
        :class:`genrelib.training.augment.WaveAugment`): how many, and each copy's random pitch shift (+- semitones), tempo
        change (rate in 1 +- time_stretch), circular time shift (+- seconds), white noise at an SNR in dB
        (None: no noise). 0: no copies (the default).
    """

    family: str = "seed_cnn"
    epochs: int = 30
    batch_size: int = 32
    patience: int = 5
    learning_rate: float | None = None
    class_weights: bool = False
    seed: int = SEED
    split: str = "random"
    split_file: str = ""
    test_size: float = 0.2
    valid_size: float = 0.2
    force: bool = False
    dropout: float | None = None
    l2: float | None = None
    filters: int | None = None
    logreg_c: float | None = None
    time_masks: int = 0
    freq_masks: int = 0
    time_mask_width: float = 0.1
    freq_mask_width: float = 0.1
    gain_db: float = 0.0
    noise_std: float = 0.0
    mixup: float = 0.0
    aug_copies: int = 0
    pitch_shift: float = 0.0
    time_stretch: float = 0.0
    time_shift: float = 0.0
    noise_snr: float | None = None

    def __post_init__(self) -> None:
        check_family(self.family)
        if self.split_file and self.split == "random":  # the default split: the file says what the split is
            object.__setattr__(self, "split", "file")
        if self.split == "file" and not self.split_file:
            raise DatasetError(
                f"split 'file' needs the lists: --split-file FILE (TrainConfig(split_file=...)); {SPLIT_FILE_FORMAT}"
            )
        if self.split_file and self.split != "file":
            raise DatasetError(
                f"--split {self.split} and --split-file {self.split_file} contradict each other; give one of them"
            )
        for name in ("learning_rate", "dropout", "l2", "logreg_c", "test_size", "valid_size"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v)):
                raise ModelError(f"{name} must be a finite number, got {v!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or not 0 <= self.seed <= 2**32 - 1:
            raise ModelError(f"seed must be a whole number in [0, 4294967295], got {self.seed!r}")
        if int(self.patience) != self.patience or self.patience < 0:
            raise ModelError(f"patience must be a whole number >= 0, got {self.patience!r}")
        if self.epochs < 1:
            raise ModelError(f"epochs must be >= 1, got {self.epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ModelError(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ModelError(f"learning_rate must be > 0 (or None: the family's default), got {self.learning_rate!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.l2 is not None and not self.l2 >= 0:
            raise ModelError(f"l2 must be >= 0, got {self.l2!r}")
        if self.filters is not None and (int(self.filters) != self.filters or self.filters < 1):
            raise ModelError(f"filters must be a whole number >= 1, got {self.filters!r}")
        if self.logreg_c is not None and not self.logreg_c > 0:
            raise ModelError(f"logreg_c must be > 0, got {self.logreg_c!r}")
        fa, wa = self.feature_augment(), self.wave_augment()  # each checks its own values
        keras_only = [
            n
            for n, on in (
                ("augmentation", fa.active or wa.active),
                ("dropout", self.dropout is not None),
                ("l2", self.l2 is not None),
                ("filters", self.filters is not None),
            )
            if on
        ]
        if self.family not in KERAS_FAMILIES and keras_only:
            raise ModelError(
                f"{', '.join(keras_only)} applies to the Keras families ({', '.join(KERAS_FAMILIES)}), "
                f"not to {self.family}"
            )
        if self.l2 is not None and self.family != "seed_cnn":
            raise ModelError(f"l2 applies to seed_cnn only ({self.family} has no weight penalty)")
        if self.logreg_c is not None and self.family in KERAS_FAMILIES:
            raise ModelError(f"logreg_c applies to the summary and musicnn families, not to {self.family}")

    def feature_augment(self):
        """The on-the-fly augmentation settings (:class:`genrelib.training.augment.FeatureAugment`)."""
        from genrelib.training.augment import FeatureAugment

        return FeatureAugment(
            time_masks=self.time_masks,
            freq_masks=self.freq_masks,
            time_mask_width=self.time_mask_width,
            freq_mask_width=self.freq_mask_width,
            gain_db=self.gain_db,
            noise_std=self.noise_std,
            mixup=self.mixup,
        )

    def wave_augment(self):
        """The waveform-copy settings (:class:`genrelib.training.augment.WaveAugment`)."""
        from genrelib.training.augment import WaveAugment

        return WaveAugment(
            copies=self.aug_copies,
            pitch_shift=self.pitch_shift,
            time_stretch=self.time_stretch,
            time_shift=self.time_shift,
            noise_snr=self.noise_snr,
        )

    @property
    def augmented(self) -> bool:
        """Whether any augmentation is on."""
        return self.feature_augment().active or self.wave_augment().active

    def build_kwargs(self) -> dict:
        """Keyword arguments of the family's ``build`` that differ from its defaults."""
        kw = {
            name: getattr(self, name) for name in ("learning_rate", "dropout", "l2") if getattr(self, name) is not None
        }
        if self.filters is not None:
            f = int(self.filters)
            kw["filters"] = {"seed_cnn": f, "mel_cnn": (f, 2 * f, 2 * f, 4 * f), "crnn": (f, 2 * f, 2 * f)}[self.family]
        return kw


def feature_config_for(family: str, *, kind: str = "", **overrides) -> FeatureConfig:
    """The feature configuration a family trains on: the family's kind (:data:`genrelib.models.FAMILIES`), or
    ``kind`` when one is given (``""``: the family's), and ``overrides`` of the other fields."""
    family_kind = FAMILIES[check_family(family)]
    return FeatureConfig(kind=kind or family_kind, **overrides)
