"""The ``ensemble`` family: trained models of any families, each on its own features, combined per window and track.

How an ensemble classifies
--------------------------
An ensemble never sees feature rows. Each member extracts its own features (a seed_cnn its MFCC segments, a
summary model its 57-column windows) and aggregates its own rows into one probability vector per 30 s window and
per track by the mean log-probability, exactly as it does alone (:func:`genrelib.evaluation.reports.aggregate`). The ensemble
then takes the weighted mean of the members' log-probabilities and renormalizes (:meth:`EnsembleModel.combine`; a
weighted geometric mean, or product of experts, with the weights scaled to sum to 1). The two code paths that
apply a model do this and nothing more:

- prediction, :func:`genrelib.inference.predict.predict_file`: each member classifies the file as it would alone; the ensemble
  combines the members' window probabilities (the timeline) and their song probabilities;
- evaluation, :func:`genrelib.evaluation.scoring.evaluate_folder` (through :func:`genrelib.evaluation.scoring.evaluate_ensemble`): each
  member gives window probabilities of the same tracks from its own (cached) features; the ensemble's rows are the
  combined windows (its "segment" level is the 30 s window, as for the summary family) and a track is the mean
  log-probability of its windows, which equals combining the members' track probabilities (every window of a track
  holds as many rows of a member). The members' own reports on the same tracks come with the ensemble's.

So members must agree on genres (the same set; columns are matched by name) and on how a file is cut into windows
(window length and tail rule). Weights are non-negative and not all zero.

Saved as a folder: ``genrelib-model.json`` (family ``ensemble``, genres, weights, the members' folder names, info)
and one :class:`~genrelib.models.base.GenreModel` folder per member (``member_0``, ``member_1``, ...).
:meth:`GenreModel.load <genrelib.models.base.GenreModel.load>` reads either kind of folder, so everything that loads
a model (``predict.load_model``, the MLflow audio model, a served model) loads an ensemble as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrelib import jsonio
from genrelib.errors import ModelError

ENSEMBLE = "ensemble"
META = "genrelib-model.json"  # as models.base.META (not imported: base loads this module, not the reverse)
EPS = 1e-12


def is_ensemble(model) -> bool:
    """Whether ``model`` is an :class:`EnsembleModel` (by family, so a loaded or a built one)."""
    return getattr(model, "family", None) == ENSEMBLE


def check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """One non-negative weight per member, not all zero (None: equal weights).

    Raises
    ------
    ModelError
        When the count differs from ``n``, a weight is negative or not a number, or all are zero.
    """
    if weights is None:
        return np.ones(n)
    w = np.asarray(list(weights), dtype=float)
    if w.ndim != 1 or len(w) != n:
        raise ModelError(f"{len(w)} weights for {n} models; give one weight per model, in the models' order")
    bad = [f"{v:g}" for v in w if not np.isfinite(v) or v < 0]
    if bad:
        raise ModelError(f"weights must be non-negative numbers, got {', '.join(bad)}")
    if not w.sum() > 0:
        raise ModelError("all weights are 0; give at least one model a positive weight")
    return w


@dataclass
class EnsembleModel:
    """Members' per-window and per-track log-probabilities, averaged with weights (see the module docstring).

    Attributes
    ----------
    members : list of GenreModel
        Any families except ``ensemble``; each with its own features.
    weights : np.ndarray [shape=(n_members,)]
        Non-negative; scaled to sum to 1 when combining.
    genres : list of str
        Output ``i`` is the probability of ``genres[i]`` (the first member's order).
    info : dict
        ``members`` (each member's name, family, weight, data and split), the split's common track lists
        (``split_tracks``), and the data facts the members share.
    """

    members: list
    weights: np.ndarray
    genres: list[str]
    info: dict = field(default_factory=dict)

    family = ENSEMBLE
    is_keras = False

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ModelError(f"an ensemble needs at least two models, got {len(self.members)}")
        nested = [i + 1 for i, m in enumerate(self.members) if is_ensemble(m)]
        if nested:
            raise ModelError(f"model {', '.join(map(str, nested))} is itself an ensemble; give its members instead")
        self.weights = check_weights(self.weights, len(self.members))
        names = self.member_names
        sets = [sorted(m.genres) for m in self.members]
        if any(s != sets[0] for s in sets[1:]):
            listed = "; ".join(f"{n} ({m.family}): {', '.join(s)}" for n, m, s in zip(names, self.members, sets))
            raise ModelError(
                f"the models know different genre sets ({listed}); an ensemble combines models of the "
                "same genres: train them on the same genre folders"
            )
        cuts = {(m.feature_config.window_seconds, m.feature_config.min_fraction) for m in self.members}
        if len(cuts) > 1:
            raise ModelError(
                "the models cut files into different windows (window seconds, tail fraction: "
                f"{sorted(cuts)}); an ensemble combines per window, so they must agree"
            )
        self.genres = list(self.genres) or list(self.members[0].genres)
        if sorted(self.genres) != sets[0]:
            raise ModelError(f"ensemble genres {self.genres} are not its members' {sets[0]}")
        index = {g: i for i, g in enumerate(self.genres)}
        # column j of member k's output is genre members[k].genres[j]: where it goes in the ensemble's order
        self._columns = [np.array([index[g] for g in m.genres]) for m in self.members]

    @property
    def feature_config(self):
        raise ModelError(
            "an ensemble has no single feature configuration: each member extracts its own "
            "(members[i].feature_config); classify files with genrelib.inference.predict and evaluate with "
            "genrelib.evaluation.scoring.evaluate_folder"
        )

    @property
    def feature_configs(self) -> list:
        """The members' feature configurations, in the members' order."""
        return [m.feature_config for m in self.members]

    @property
    def member_names(self) -> list[str]:
        """What each member was given as (a registry reference, a folder), or ``model k``."""
        recorded = [str(r.get("name", "")) for r in self.info.get("members", [])]
        if len(recorded) == len(self.members) and all(recorded):
            return recorded
        return [f"model {i + 1}" for i in range(len(self.members))]

    def predict_proba(self, X, **kw):
        raise ModelError(
            "an ensemble takes no feature rows (its members take different features); use "
            "genrelib.inference.predict.predict_file or genrelib.evaluation.scoring.evaluate_folder"
        )

    def combine(self, probas: Sequence[np.ndarray]) -> np.ndarray:
        """The weighted mean of the members' log-probabilities, renormalized.

        Parameters
        ----------
        probas : sequence of np.ndarray [shape=(n, len(members[k].genres))]
            Member ``k``'s probabilities of the same ``n`` windows or tracks, in its own genre order.

        Returns
        -------
        P : np.ndarray [shape=(n, len(genres))], rows summing to 1.
        """
        if len(probas) != len(self.members):
            raise ModelError(f"{len(probas)} probability arrays for {len(self.members)} members")
        w = self.weights / self.weights.sum()
        n = len(probas[0])
        logp = np.zeros((n, len(self.genres)))
        for k, P in enumerate(probas):
            P = np.asarray(P, dtype=np.float64)
            if P.shape != (n, len(self.genres)):
                raise ModelError(
                    f"member {k + 1}'s probabilities have shape {P.shape}, expected {(n, len(self.genres))}"
                )
            logp[:, self._columns[k]] += w[k] * np.log(np.clip(P, EPS, 1.0))
        out = np.exp(logp - logp.max(axis=1, keepdims=True))
        return out / out.sum(axis=1, keepdims=True)

    def save(self, path: str | Path) -> Path:
        """Write the ensemble folder: the members' folders and ``genrelib-model.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        folders = [f"member_{k}" for k in range(len(self.members))]
        for m, folder in zip(self.members, folders):
            m.save(path / folder)
        meta = {
            "family": ENSEMBLE,
            "genres": self.genres,
            "weights": self.weights.tolist(),
            "members": folders,
            "info": self.info,
            "format": 1,
        }
        (path / META).write_text(jsonio.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path, *, load_member: Callable[[Path], object]) -> EnsembleModel:
        """Read a folder written by :meth:`save`; ``load_member`` reads a member's folder
        (:meth:`GenreModel.load <genrelib.models.base.GenreModel.load>`, which calls this)."""
        path = Path(path)
        meta = json.loads((path / META).read_text())
        missing = [f for f in meta["members"] if not (path / f / META).exists()]
        if missing:
            raise ModelError(f"ensemble folder {path} lacks its member folders {missing}; save it again")
        return cls(
            members=[load_member(path / f) for f in meta["members"]],
            weights=np.asarray(meta["weights"]),
            genres=list(meta["genres"]),
            info=meta.get("info", {}),
        )
