"""Reading a finished feature store: :func:`open_store` and the lazy :class:`StoredFeatureSet`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from genrelib.errors import FeatureError
from genrelib.features.config import FeatureConfig
from genrelib.features.featureset import FeatureSet
from genrelib.features.shards import FORMAT, shard_name


def open_store(folder: str | Path) -> StoredFeatureSet:
    """Open a finished store folder (``DIR/<kind>-<key>``) for lazy reading.

    Raises
    ------
    FeatureError
        When it is not a finished genrelib store (no manifest: extraction did not finish).
    """
    import pyarrow.parquet as pq

    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        index = pq.read_table(folder / "index.parquet").to_pandas()
    except (OSError, ValueError) as exc:
        raise FeatureError(
            f"{folder} is not a finished genrelib feature store ({exc}); run `genrelib features "
            f"DATA --store {folder.parent}` (it resumes an interrupted extraction)"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FeatureError(f"{folder}/manifest.json is not a genrelib feature store manifest")
    problem = _index_problem(manifest, index)
    if problem:
        raise FeatureError(
            f"{folder}: {problem}; the store was edited or damaged: run `genrelib features DATA --store "
            f"{folder.parent}` to check it shard by shard and compute again what is bad"
        )
    return StoredFeatureSet(folder, manifest, index)


def _index_problem(manifest: dict, index) -> str | None:
    """Why a store's manifest and index disagree with each other; None when they agree."""
    need = {"track_id", "genre", "shard", "row_start", "row_stop", "windows"}
    if not need <= set(index.columns):
        return f"index.parquet lacks the columns {sorted(need - set(index.columns))}"
    genres, tracks, shards = manifest.get("genres"), manifest.get("tracks"), manifest.get("shards")
    if not (isinstance(genres, list) and isinstance(tracks, int) and isinstance(shards, list)):
        return "manifest.json lacks its genres, tracks or shards"
    if len(index) != tracks or index["track_id"].duplicated().any():
        return f"index.parquet lists {len(index)} tracks (or some twice), manifest.json {tracks}"
    strange = sorted(set(index["genre"]) - set(genres))
    if strange:
        return f"index.parquet has genres {strange} that manifest.json does not"
    if ((index["row_stop"] < index["row_start"]) | (index["shard"] < 0) | (index["shard"] >= len(shards))).any():
        return "index.parquet has rows outside the shards"
    return None


class StoredFeatureSet:
    """A feature set in a store, read lazily: the per-track index is in memory, the rows stay in the shards.

    It has :class:`~genrelib.features.featureset.FeatureSet`'s attribute names: ``config``, ``genres``, ``skipped``,
    ``cache_error``, ``track_ids``, ``row_genres``, ``window``, ``segment``, ``labels``, ``tracks``, ``len()``,
    ``select``, ``split`` (both lazy: views on a subset of tracks), ``subset`` and ``X`` (these two read every
    selected row into memory, as :meth:`load` does: for data that fits). :meth:`iter_shards` reads shard by shard.

    Attributes
    ----------
    path : Path
        The store folder.
    manifest : dict
    index : pandas.DataFrame
        One row per (selected) track: ``track_id``, ``genre``, ``shard``, ``row_start``, ``row_stop``
        (rows within the shard), ``windows``.
    repaired : list of str
        Shards found corrupt or incomplete and computed again by the extraction that returned this set.
    """

    def __init__(self, path: Path, manifest: dict, index) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.index = index.reset_index(drop=True)
        self.config = FeatureConfig.from_dict(manifest["config"])
        self.genres = list(manifest["genres"])
        self.skipped = [tuple(s) for s in manifest["skipped"]]
        self.cache_error: str | None = None
        self.repaired: list[str] = []

    def __len__(self) -> int:
        return int((self.index["row_stop"] - self.index["row_start"]).sum())

    def __repr__(self) -> str:
        return (
            f"StoredFeatureSet({self.path}, kind={self.config.kind!r}, tracks={len(self.index)}, "
            f"rows={len(self)}, shards={self.index['shard'].nunique()})"
        )

    @property
    def _counts(self) -> np.ndarray:
        return (self.index["row_stop"] - self.index["row_start"]).to_numpy()

    @property
    def track_ids(self) -> np.ndarray:
        """Track id of each row."""
        return np.repeat(self.index["track_id"].to_numpy().astype(str), self._counts)

    @property
    def row_genres(self) -> np.ndarray:
        """Genre of each row."""
        return np.repeat(self.index["genre"].to_numpy().astype(str), self._counts)

    @property
    def labels(self) -> np.ndarray:
        """Integer label of each row (index into :attr:`genres`)."""
        pos = {g: i for i, g in enumerate(self.genres)}
        return np.repeat(np.array([pos[g] for g in self.index["genre"]], np.int64), self._counts)

    @property
    def tracks(self) -> list[str]:
        """Distinct track ids in order."""
        return self.index["track_id"].tolist()

    @property
    def window(self) -> np.ndarray:
        """Window index of each row (read from the shards' window column only)."""
        return self._column("window")

    @property
    def segment(self) -> np.ndarray:
        """Segment index of each row."""
        return self._column("segment")

    @property
    def X(self) -> np.ndarray:
        """Every selected row's features, read into memory (see :meth:`load`)."""
        return self.load().X

    def _column(self, name: str) -> np.ndarray:
        out = [part[name] for _, part in self.iter_shards(columns=(name,))]
        return np.concatenate(out) if out else np.zeros(0, np.int32)

    def shard_file(self, shard: int) -> Path:
        return self.path / "shards" / f"{shard_name(int(shard))}.parquet"

    def read_shard(self, shard: int, columns: Sequence[str] = ("x", "window", "segment")) -> dict[str, np.ndarray]:
        """The selected rows of one shard: ``{column: array}``, ``x`` shaped ``(rows, *config.row_shape)``,
        plus ``labels`` and ``track_ids``.

        Raises
        ------
        FeatureError
            When the shard is missing, unreadable or not the size its record says: names the shard and the fix.
        """
        import pyarrow.parquet as pq

        path = self.shard_file(shard)
        expected = self.manifest["shards"][int(shard)]["rows"]
        try:
            table = pq.read_table(path, columns=list(columns))
        except (OSError, ValueError) as exc:
            table, why = None, str(exc)
        if table is None or table.num_rows != expected:
            why = why if table is None else f"{table.num_rows} rows, its record says {expected}"
            raise FeatureError(
                f"shard {path} is corrupt or missing ({why}); run `genrelib features "
                f"{self.manifest['data_root']} --kind {self.config.kind} --store {self.path.parent}` "
                "again: it detects the shard and computes it again"
            )
        part = self.index[self.index["shard"] == shard]
        take = (
            np.concatenate([np.arange(a, b) for a, b in zip(part["row_start"], part["row_stop"])])
            if len(part)
            else np.zeros(0, np.int64)
        )
        out: dict[str, np.ndarray] = {}
        for name in columns:
            col = table.column(name)
            if name == "x":
                flat = col.combine_chunks().flatten().to_numpy(zero_copy_only=False)
                out[name] = flat.reshape(table.num_rows, *self.config.row_shape)[take]
            else:
                out[name] = col.to_numpy(zero_copy_only=False)[take]
        counts = (part["row_stop"] - part["row_start"]).to_numpy()
        pos = {g: i for i, g in enumerate(self.genres)}
        out["labels"] = np.repeat(np.array([pos[g] for g in part["genre"]], np.int64), counts)
        out["track_ids"] = np.repeat(part["track_id"].to_numpy().astype(str), counts)
        return out

    def shards(self) -> list[int]:
        """Shards holding selected rows, in order."""
        return sorted(int(s) for s in self.index["shard"].unique())

    def iter_shards(
        self, columns: Sequence[str] = ("x", "window", "segment"), order: Sequence[int] | None = None
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(shard, read_shard(shard))`` for each shard with selected rows, in ``order`` (default: stored)."""
        for s in self.shards() if order is None else order:
            yield s, self.read_shard(s, columns)

    def _view(self, mask) -> StoredFeatureSet:
        view = StoredFeatureSet(self.path, self.manifest, self.index[np.asarray(mask)])
        view.skipped, view.repaired = list(self.skipped), list(self.repaired)
        return view

    def select(self, track_ids: Sequence[str]) -> StoredFeatureSet:
        """A lazy view on the given tracks."""
        return self._view(self.index["track_id"].isin(list(track_ids)).to_numpy())

    def split(self, split: dict[str, str]) -> dict[str, StoredFeatureSet]:
        """Lazy views by a ``track_id -> part`` map; tracks in no part drop."""
        parts = self.index["track_id"].map(lambda t: split.get(t, "")).to_numpy()
        return {p: self._view(parts == p) for p in ("train", "valid", "test")}

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """Rows where ``mask`` is true, in memory."""
        return self.load().subset(mask)

    def load(self) -> FeatureSet:
        """Read every selected row into an in-memory :class:`~genrelib.features.featureset.FeatureSet` (equal to what
        :func:`genrelib.features.extraction.extract` returns for the same data and configuration)."""
        parts = [p for _, p in self.iter_shards()]
        empty = np.zeros(0, np.int32)
        cat = (lambda k: np.concatenate([p[k] for p in parts])) if parts else (lambda k: empty)
        X = np.concatenate([p["x"] for p in parts]) if parts else np.zeros((0, *self.config.row_shape), np.float32)
        return FeatureSet(
            X=X,
            track_ids=self.track_ids,
            window=cat("window").astype(np.int32),
            segment=cat("segment").astype(np.int32),
            row_genres=self.row_genres,
            genres=list(self.genres),
            config=self.config,
            skipped=list(self.skipped),
        )

    materialize = load
