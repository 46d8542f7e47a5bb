"""A classifier head on frozen musicnn embeddings: scikit-learn, chosen on the validation split.

Source: the transfer-learning protocol of J. Pons and X. Serra, "musicnn: pre-trained convolutional neural
networks for music audio tagging", ISMIR 2019 late-breaking demo, and of the GTZAN anchors it reports
(MSD musicnn embedding + SVM: 77.2% on the fault-filtered split). Input: a window's mean over its 3 s patches of
the 200-d penultimate embedding and the 50 MSD tag probabilities (:mod:`genrelib.features.musicnn`, feature kind
``musicnn``). Candidates: standardization plus logistic regression (C in 0.01, 0.03, 0.1, 0.3, 1) or an RBF
SVM (C in 1, 3, 10; probabilities by Platt scaling on internal folds); the best validation accuracy wins.
The pretrained network itself is not trained (fine-tuning is left out: the head alone is what the
published results use).
"""

from __future__ import annotations

import numpy as np


def candidates(seed: int = 42, *, calibration_folds: int = 3, C: float | None = None) -> dict:
    """Named, unfitted candidate pipelines; ``C`` given: only the logistic regression with that C."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if C is not None:
        return {f"logreg_C{C:g}": make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))}
    out = {
        f"logreg_C{c:g}": make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        for c in (0.01, 0.03, 0.1, 0.3, 1.0)
    }
    if calibration_folds >= 2:
        out.update(
            {
                f"svm_rbf_C{c:g}": make_pipeline(
                    StandardScaler(),
                    CalibratedClassifierCV(SVC(C=c, random_state=seed), ensemble=False, cv=calibration_folds),
                )
                for c in (1.0, 3.0, 10.0)
            }
        )
    return out


def select(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    seed: int = 42,
    C: float | None = None,
) -> tuple[str, object, dict[str, float]]:
    """Fit every candidate on the training part, keep the best on the validation part (see
    :func:`genrelib.models.summary.select`); ``C`` given: only the logistic regression with that C."""
    from genrelib.models.summary import select_among

    return select_among(candidates, X_train, y_train, X_valid, y_valid, seed=seed, C=C)
