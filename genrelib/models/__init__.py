"""Model families, one module each. Keras families expose ``build(input_shape, n_classes, ...)``.

=========== ============= ==================================================================
family      features      source
=========== ============= ==================================================================
seed_cnn    mfcc segments the original student notebook's CNN (86,314 parameters on 130x16)
mel_cnn     mel segments  a compact fully-convolutional CNN after Choi, Fazekas & Sandler (2016)
crnn        mel segments  convolutional recurrent network after Choi et al. (2017)
summary     summary rows  scikit-learn pipeline on the 57 GTZAN table features
musicnn     musicnn rows  scikit-learn head on pretrained musicnn embeddings (Pons & Serra 2019)
=========== ============= ==================================================================

Layer 5: imports the features layer (a model knows the feature configuration it was trained on) and the ground.
"""

from __future__ import annotations

from genrelib.errors import ModelError

#: Feature kind each family is trained on.
FAMILIES: dict[str, str] = {
    "seed_cnn": "mfcc",
    "mel_cnn": "mel",
    "crnn": "mel",
    "summary": "summary",
    "musicnn": "musicnn",
}
KERAS_FAMILIES = ("seed_cnn", "mel_cnn", "crnn")
#: Families whose estimator is a scikit-learn pipeline chosen on validation (module with ``select``).
SKLEARN_FAMILIES = ("summary", "musicnn")


def check_family(name: str) -> str:
    """Return ``name`` if it is a known family, else raise :class:`ModelError` listing the choices."""
    if name not in FAMILIES:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(FAMILIES)}")
    return name


def build_keras(family: str, input_shape: tuple[int, ...], n_classes: int, **kw):
    """Build (and compile) the Keras model of ``family``."""
    check_family(family)
    if family == "seed_cnn":
        from genrelib.models.seed_cnn import build
    elif family == "mel_cnn":
        from genrelib.models.mel_cnn import build
    elif family == "crnn":
        from genrelib.models.crnn import build
    else:
        raise ModelError(f"{family!r} is not a Keras model family")
    return build(input_shape, n_classes, **kw)


__all__ = ["FAMILIES", "KERAS_FAMILIES", "SKLEARN_FAMILIES", "build_keras", "check_family"]
