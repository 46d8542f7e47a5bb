"""What a training run shows: the describe table with advice, the training curves, the architecture diagram, augmented
examples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from genrelib.errors import ModelError
from genrelib.features.featureset import FeatureSet
from genrelib.models.base import GenreModel
from genrelib.training.config import TrainConfig


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: GenreModel
    history: dict
    split: dict[str, str]
    split_sizes: dict[str, dict[str, int]]
    features: FeatureSet
    report: object | None = None
    run_id: str | None = None
    model_uri: str | None = None
    registered_version: str | None = None
    extra: dict = field(default_factory=dict)
    config: TrainConfig | None = None


def describe(result: TrainResult):
    """A one-column table of what a training run produced."""
    import pandas as pd

    info = result.model.info
    sizes = {p: sum(c.values()) for p, c in result.split_sizes.items()}
    facts = {
        "family": result.model.family,
        "run id": result.run_id,
        "registered version": result.registered_version,
        "alias": result.extra.get("alias_reason") or "not registered",
        "tracks train / valid / test": f"{sizes['train']} / {sizes['valid']} / {sizes['test']}",
        "rows train / valid": f"{info.get('train_rows')} / {info.get('valid_rows')}",
    }
    if result.model.is_keras:
        facts.update(
            {
                "epochs run": info["epochs_run"],
                "best epoch": info["best_epoch"],
                "training seconds": round(info["train_seconds"], 1),
            }
        )
        if info.get("still_improving"):
            facts["still improving"] = (
                f"yes: validation loss was still falling at the last epoch "
                f"({info['epochs_run']}); more epochs would likely help"
            )
    else:
        facts["chosen estimator"] = info["chosen"]
    if result.config is not None and result.config.augmented:
        from genrelib.training.augment import describe as describe_augmentation

        facts["augmentation (training tracks only)"] = describe_augmentation(
            result.config.feature_augment(), result.config.wave_augment()
        )
        if info.get("augmented_rows"):
            facts["rows of augmented copies"] = info["augmented_rows"]
    if result.extra.get("left_out"):
        facts["tracks left out of the split"] = len(result.extra["left_out"])
    if result.extra.get("split_problems"):
        facts["split problems (trained anyway, force)"] = "; ".join(result.extra["split_problems"])
    if result.report is not None:
        facts["test accuracy per segment"] = round(result.report.segment.metrics["accuracy"], 4)
        facts["test accuracy per track"] = round(result.report.track.metrics["accuracy"], 4)
    return pd.DataFrame({"value": {k: str(v) for k, v in facts.items()}})


def augmented_examples(result: TrainResult, *, n_tracks: int = 2, variants: int = 2) -> dict:
    """One segment of a training track of each of the first ``n_tracks`` genres, original and augmented as the
    run's configuration augments it (for :func:`genrelib.plots.plot_augmented_examples`).

    Returns
    -------
    dict
        ``{track_id: {label: S}}`` (see :func:`genrelib.training.copies.examples`).
    """
    from genrelib.datasets.tracks import Track
    from genrelib.training import copies as wave_copies

    config = result.config
    if config is None:
        raise ModelError(
            "this result records no training configuration; give one trained by genrelib.training.trainer.train"
        )
    genre_of = dict(zip(result.features.track_ids.tolist(), result.features.row_genres.tolist()))
    root = Path(result.extra["data_root"])
    tracks, seen = [], set()
    for tid in sorted(t for t, p in result.split.items() if p == "train" and t in genre_of):
        if genre_of[tid] not in seen and len(tracks) < n_tracks:
            seen.add(genre_of[tid])
            tracks.append(Track(root / tid, genre_of[tid], tid))
    return wave_copies.examples(
        tracks,
        result.features.config,
        config.feature_augment(),
        config.wave_augment(),
        seed=config.seed,
        variants=variants,
    )


def summary_text(model: GenreModel) -> str:
    """``model.summary()`` of a Keras model, or the scikit-learn pipeline's description."""
    if not model.is_keras:
        return repr(model.estimator)
    lines: list[str] = []
    model.estimator.summary(print_fn=lambda s, **kw: lines.append(s))
    return "\n".join(lines)


def loss_label(model: object) -> str:
    """What a Keras model's training loss is made of: ``"cross-entropy"``, plus the weight penalties its layers
    add to it (``"cross-entropy + L2"`` for seed_cnn's L2-regularized kernels).

    Parameters
    ----------
    model : keras.Model
    """
    penalties: set[str] = set()
    layers = list(model.layers)
    while layers:
        layer = layers.pop()
        layers += list(getattr(layer, "layers", []))  # nested models and blocks
        for attr in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer"):
            reg = getattr(layer, attr, None)
            if reg is not None:
                penalties.add(type(reg).__name__)
    return " + ".join(["cross-entropy", *sorted(penalties)])


def history_figure(model: GenreModel, history: dict):
    """Training curves of a Keras model (loss and segment accuracy per epoch), the loss named as the model
    computes it."""
    from genrelib import plots

    return plots.plot_history(history, title=f"{model.family} training curves", loss_label=loss_label(model.estimator))


def architecture_diagram(model):
    """The visualkeras layered diagram of a Keras model as a PIL image.

    visualkeras 0.2 reads ``layer.output_shape``, which Keras 3 removed; the shim below gives each layer that
    attribute from its output tensor for the duration of the call.
    """
    import visualkeras

    patched = []
    for layer in model.layers:
        if not hasattr(layer, "output_shape"):
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):
                continue
            try:
                object.__setattr__(layer, "output_shape", shape)
            except (AttributeError, TypeError):
                type(layer).output_shape = property(lambda self: tuple(self.output.shape))
            patched.append(layer)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The legend_text_spacing_offset", category=UserWarning)
            return visualkeras.layered_view(model, legend=True, scale_xy=1.5, scale_z=0.5, max_z=40)
    finally:
        for layer in patched:
            try:
                object.__delattr__(layer, "output_shape")
            except (AttributeError, TypeError):
                pass
