"""scikit-learn pipelines on the 57 summary features: scaling plus a classifier chosen on the validation split.

Every pipeline starts with a Yeo-Johnson power transform (which also standardizes): the variance columns are
heavy-tailed, and making them Gaussian-like gained about 2 points of validation accuracy on the real GTZAN
table over plain standardization. Candidates: logistic regression (C in 0.03, 0.1, 0.3, 1), an RBF SVM
(C in 1, 3, 10, probabilities by Platt scaling) and histogram gradient boosting; the one with the best
validation accuracy is kept. The classic results on the GTZAN feature table use
these (see the README's anchors: 55-56% on the fault-filtered split).
"""

from __future__ import annotations

import numpy as np


def candidates(seed: int = 42, *, calibration_folds: int = 3, C: float | None = None) -> dict:
    """Named, unfitted candidate pipelines.

    ``C`` given: the logistic regression with that C as the only candidate (what a hyper-parameter search
    that chooses C itself needs); None: every candidate below.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PowerTransformer
    from sklearn.svm import SVC

    if C is not None:
        return {f"logreg_C{C:g}": make_pipeline(PowerTransformer(), LogisticRegression(C=C, max_iter=5000))}
    out = {
        f"logreg_C{c:g}": make_pipeline(PowerTransformer(), LogisticRegression(C=c, max_iter=5000))
        for c in (0.03, 0.1, 0.3, 1.0)
    }
    # Probabilities of the SVM by Platt scaling on internal folds (what SVC(probability=True) did).
    if calibration_folds >= 2:
        out.update(
            {
                f"svm_rbf_C{c:g}": make_pipeline(
                    PowerTransformer(),
                    CalibratedClassifierCV(SVC(C=c, random_state=seed), ensemble=False, cv=calibration_folds),
                )
                for c in (1.0, 3.0, 10.0)
            }
        )
    out["hist_gb"] = make_pipeline(PowerTransformer(), HistGradientBoostingClassifier(random_state=seed, max_iter=200))
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
    """Fit every candidate on the training part, keep the best on the validation part.

    ``C`` given: only the logistic regression with that C (see :func:`candidates`).

    Returns
    -------
    name : str
    model : sklearn Pipeline
        The chosen candidate, fitted on the training part only.
    scores : dict
        Validation accuracy of every candidate.
    """
    return select_among(candidates, X_train, y_train, X_valid, y_valid, seed=seed, C=C)


def select_among(
    make_candidates,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    seed: int = 42,
    C: float | None = None,
) -> tuple[str, object, dict[str, float]]:
    """:func:`select` over the pipelines ``make_candidates(seed, calibration_folds=k, C=C)`` returns."""
    scores, fitted = {}, {}
    # The SVM's probability calibration needs at least 2 training examples of every genre per fold.
    folds = int(min(3, np.bincount(y_train)[np.unique(y_train)].min()))
    for name, pipe in make_candidates(seed, calibration_folds=folds, C=C).items():
        pipe.fit(X_train, y_train)
        scores[name] = float(np.mean(pipe.predict(X_valid) == y_valid))
        fitted[name] = pipe
    best = max(scores, key=lambda k: scores[k])
    return best, fitted[best], scores
