import numpy as np
import pytest

from genrelib.errors import ModelError
from genrelib.evaluate import aggregate
from genrelib.models import build_keras, check_family


@pytest.mark.parametrize("n_mfcc", [16, 13])
def test_seed_cnn_is_the_notebooks(n_mfcc):
    m = build_keras("seed_cnn", (130, n_mfcc), 10)
    assert m.count_params() == 86314  # as the notebook's model.summary() shows
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "BatchNormalization"] * 3 + ["Flatten"] + ["Dense", "Dropout"] * 3 \
        + ["Dense"]
    assert [layer.kernel_size for layer in m.layers if type(layer).__name__ == "Conv2D"] == [(3, 3), (3, 3), (2, 2)]
    assert all(layer.kernel_regularizer is not None for layer in m.layers if hasattr(layer, "kernel_regularizer"))
    assert float(m.optimizer.learning_rate) == pytest.approx(1e-4)
    assert m.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("family,shape", [("mel_cnn", (130, 128)), ("crnn", (130, 128)), ("crnn", (130, 16))])
def test_other_keras_families_output_probabilities(family, shape):
    m = build_keras(family, shape, 4)
    x = np.random.default_rng(0).standard_normal((3, *shape, 1)).astype(np.float32)
    p = np.asarray(m(x, training=False))
    assert p.shape == (3, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_family():
    with pytest.raises(ModelError, match="unknown model 'resnet'"):
        check_family("resnet")


def test_aggregate_mean_log_probability():
    P = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    keys, A = aggregate(P, np.array(["b", "b", "a", "a"]))
    assert list(keys) == ["b", "a"]  # first-seen order
    g = np.sqrt(P[0] * P[1])
    np.testing.assert_allclose(A[0], g / g.sum())
    np.testing.assert_allclose(A.sum(axis=1), 1.0)
