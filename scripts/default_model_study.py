"""The comparison behind the default model's head: candidates on the 153 real tracks' musicnn features.

Reads the feature table that ``make default-model`` writes (``tests/data/default_model_features.npz``: per track the
mean and standard deviation over its 3 s patches of musicnn's 200-d embedding and 50 tags) and measures, for
feature subsets and heads, the per-track accuracy under two honest protocols:

- grouped 5-fold cross-validation, 3 repetitions, groups of five consecutive GTZAN numbers of a genre
  (``blocks:5``, an approximation of artists; C chosen per fold by an inner grouped 3-fold CV);
- the fault-filtered split itself (artist-disjoint by construction): fit on its TRAIN part (96 tracks), test on its
  VALID part (57 tracks); C chosen by grouped CV on TRAIN.

For the logistic regressions it also reports the mean top probability on the held-out tracks against their accuracy
(how far the probability is from a chance of being right). Prints a markdown table.

    .venv/bin/python scripts/default_model_study.py [--table tests/data/default_model_features.npz]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
SVM_GRID = (1.0, 3.0, 10.0)
N_EMB, N_TAGS = 200, 50
#: Feature subsets: columns of the 500-value row (embedding means, tag means, embedding stds, tag stds).
SUBSETS = {
    "embedding + tags, mean and std (the default)": np.r_[0:500],
    "embedding + tags, mean": np.r_[0:250],
    "embedding, mean and std": np.r_[0:200, 250:450],
    "embedding, mean": np.r_[0:200],
    "tags, mean": np.r_[200:250],
}


def groups_of(ids: list[str], size: int = 5) -> np.ndarray:
    out = []
    for i in ids:
        m = re.match(r"(?P<g>[a-z]+)/(?P=g)\.(?P<n>\d{5})", i)
        out.append(f"{m['g']}:{int(m['n']) // size}")
    return np.array(out)


def make(head: str, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if head == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=10000, tol=1e-6))
    return make_pipeline(StandardScaler(), SVC(C=c))


def choose(head, X, y, g, seed) -> float:
    """C by grouped 3-fold CV on the training part only."""
    from sklearn.model_selection import StratifiedGroupKFold

    grid = C_GRID if head == "lr" else SVM_GRID
    scores = {c: [] for c in grid}
    for tr, te in StratifiedGroupKFold(3, shuffle=True, random_state=seed).split(X, y, g):
        for c in grid:
            scores[c].append(np.mean(make(head, c).fit(X[tr], y[tr]).predict(X[te]) == y[te]))
    return max(grid, key=lambda c: (round(float(np.mean(scores[c])), 6), -c))


def evaluate(head, X, y, tr, te, g, seed):
    c = choose(head, X[tr], y[tr], g[tr], seed)
    model = make(head, c).fit(X[tr], y[tr])
    acc = float(np.mean(model.predict(X[te]) == y[te]))
    top = float(np.mean(model.predict_proba(X[te]).max(axis=1))) if head == "lr" else float("nan")
    return acc, top


def main() -> int:
    from sklearn.model_selection import StratifiedGroupKFold

    from genrelib.datasets.splits import gtzan_split_lists

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(ROOT / "tests" / "data" / "default_model_features.npz"))
    args = p.parse_args()
    with np.load(args.table, allow_pickle=False) as f:
        X_all, ids, genres = f["X"].astype(np.float64), [str(i) for i in f["track_ids"]], list(f["genres"])
        y = np.array([genres.index(str(g)) for g in f["row_genres"]])
    g = groups_of(ids)
    lists = gtzan_split_lists()
    part = {i.rsplit(".", 1)[0]: name for name, members in lists.items() for i in members}
    parts = np.array([part.get(i.rsplit(".", 1)[0], "?") for i in ids])
    ff_train, ff_valid = np.where(parts == "train")[0], np.where(parts == "valid")[0]
    print(f"{len(ids)} tracks; FF TRAIN {len(ff_train)}, FF VALID {len(ff_valid)}")
    print("| features | head | grouped CV (blocks:5), 5 folds x 3 | FF TRAIN->VALID | mean top probability there |")
    print("|---|---|---|---|---|")
    for name, cols in SUBSETS.items():
        for head in ("lr", "svm_rbf"):
            X = X_all[:, cols]
            accs = []
            for r in range(3):
                for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=42 + r).split(X, y, g):
                    accs.append(evaluate(head, X, y, tr, te, g, 42 + r)[0])
            ff_acc, ff_top = evaluate(head, X, y, ff_train, ff_valid, g, 42)
            print(
                f"| {name} | {'logistic regression' if head == 'lr' else 'RBF SVM'} | {np.mean(accs):.3f} +- "
                f"{np.std(accs):.3f} | {ff_acc:.3f} ({round(ff_acc * len(ff_valid))}/{len(ff_valid)}) | "
                f"{'-' if np.isnan(ff_top) else f'{ff_top:.3f}'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
