"""The one in-memory representation of interaction data used by every stage.

An :class:`Interactions` object is a columnar event log (numpy arrays of equal length) plus vocabularies
that map the original user/item ids (strings) to dense indices ``0..n-1``. Everything downstream works on
indices and scipy sparse matrices built from it; the vocabularies travel with every artifact so that a
served model can answer in original ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.io import load_artifact, save_artifact


class DataError(ValueError):
    """Input data is malformed. The message names the file and, where it applies, the line."""


@dataclass(frozen=True)
class Vocabulary:
    """Original ids (as strings) ↔ dense indices. ``ids[i]`` is the original id of index ``i``."""

    ids: np.ndarray  # (n,) unicode strings, unique
    _index: dict[str, int] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @classmethod
    def encode(cls, raw: np.ndarray | Sequence) -> tuple[Vocabulary, np.ndarray]:
        """Build a vocabulary from raw ids and return it with the int32 codes of ``raw``.

        Numeric ids are sorted numerically (so ``ids`` reads 1, 2, 10, not 1, 10, 2); others as strings.
        """
        raw = np.asarray(raw)
        if raw.dtype.kind not in "iuf":
            raw = raw.astype(str)
        uniques, codes = np.unique(raw, return_inverse=True)
        return cls(uniques.astype(str)), codes.astype(np.int32, copy=False)

    def __len__(self) -> int:
        return len(self.ids)

    def _map(self) -> dict[str, int]:
        if self._index is None:  # built on first use: most callers only need ids
            object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.ids.tolist())})
        return self._index

    def index(self, original_id: str) -> int:
        """Index of an original id; raises ``KeyError`` for unknown ids."""
        return self._map()[str(original_id)]

    def lookup(self, original_ids: Iterable, missing: int = -1) -> np.ndarray:
        """Indices of many original ids; unknown ids map to ``missing``."""
        get = self._map().get
        return np.fromiter((get(str(x), missing) for x in original_ids), dtype=np.int64)


@dataclass
class Interactions:
    """A columnar event log: row ``k`` says user ``user[k]`` had event ``feedback[k]`` on item ``item[k]``.

    ``feedback`` holds codes into ``feedback_types`` (e.g. ``("view", "click", "sale")``). ``rating``,
    ``timestamp`` and ``partition`` are optional columns (``None`` when the source has none).
    """

    user: np.ndarray  # (n,) int32 index into users
    item: np.ndarray  # (n,) int32 index into items
    users: Vocabulary
    items: Vocabulary
    feedback: np.ndarray | None = None  # (n,) int8 index into feedback_types
    feedback_types: tuple[str, ...] = ("interaction",)
    rating: np.ndarray | None = None  # (n,) float32
    timestamp: np.ndarray | None = None  # (n,) int64, seconds
    partition: np.ndarray | None = None  # (n,) int32 index into partitions
    partitions: Vocabulary | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.user)
        if self.feedback is None:
            self.feedback = np.zeros(n, dtype=np.int8)
        for name in ("item", "feedback", "rating", "timestamp", "partition"):
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise ValueError(f"column {name!r} has {len(col)} rows, expected {n}")

    @classmethod
    def from_events(
        cls,
        users: Any,
        items: Sequence | np.ndarray | None = None,
        *,
        feedback: Sequence | np.ndarray | None = None,
        timestamp: Sequence | np.ndarray | None = None,
        partition: Sequence | np.ndarray | None = None,
        rating: Sequence | np.ndarray | None = None,
        columns: dict[str, str] | None = None,
        min_rating: float | None = None,
    ) -> Interactions:
        """An event log from the user's own data: one row per event, original ids of any type; the
        vocabularies keep them, so a model fitted on the result recommends by these ids.

        Either columns (lists, numpy arrays, pandas Series, Arrow arrays): ``users``, ``items`` and optional
        ``feedback`` (event types: "view", "click", "sale"), ``timestamp`` (seconds), ``partition``
        (catalogue: country, merchant), ``rating``; or a table — a pandas DataFrame or an Arrow table — as
        ``users``, its columns found by name as the file readers find them (``user``/``user_id``/``userId``,
        ``item``/``movieId``, ``event``, ``timestamp``, ``country``, ``rating``, …) or named by ``columns``
        (role → column: ``{"user": "uid", "item": "sku"}``), timestamps in seconds or milliseconds (said).
        ``min_rating``: keep only the events rated at least this (a rating threshold: explicit feedback as
        implicit)."""
        if items is None:
            return cls._from_table(users, columns, min_rating)
        if columns is not None:
            raise DataError("from_events: columns names the columns of a table, given as the only positional argument")
        columns = {"users": users, "items": items, "feedback": feedback, "timestamp": timestamp}
        columns |= {"partition": partition, "rating": rating}
        arrays = {k: None if v is None else np.asarray(v) for k, v in columns.items()}
        n = len(arrays["users"])
        for name, a in arrays.items():
            if a is not None and (a.ndim != 1 or len(a) != n):
                raise DataError(f"from_events: {name} has shape {a.shape}; every column needs {n} rows")
        user_vocab, user = Vocabulary.encode(arrays["users"])
        item_vocab, item = Vocabulary.encode(arrays["items"])
        kinds, codes = ("interaction",), None
        if arrays["feedback"] is not None:
            vocab, codes = Vocabulary.encode(arrays["feedback"].astype(str))
            kinds, codes = tuple(vocab.ids.tolist()), codes.astype(np.int8)
        parts, part = (None, None) if arrays["partition"] is None else Vocabulary.encode(arrays["partition"])
        numeric = {}
        for name, dtype in (("timestamp", np.int64), ("rating", np.float32)):
            a = arrays[name]
            if a is not None:
                try:
                    numeric[name] = a.astype(dtype)
                except (TypeError, ValueError):
                    raise DataError(f"from_events: {name} must be numeric, not {a.dtype}") from None
        out = cls(
            user=user, item=item, users=user_vocab, items=item_vocab, feedback=codes, feedback_types=kinds,
            partition=part, partitions=parts, source="from_events", **numeric,
        )  # fmt: skip
        return out.rated_at_least(min_rating)

    @classmethod
    def _from_table(cls, table: Any, columns: dict[str, str] | None, min_rating: float | None) -> Interactions:
        import pyarrow as pa

        from ledrec.data.readers import choose_columns, events_from_table

        if type(table).__module__.split(".")[0] == "pandas" and hasattr(table, "columns"):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if not isinstance(table, pa.Table):
            raise DataError(
                f"from_events: give a table (a pandas DataFrame or an Arrow table), or the columns users, items, "
                f"…; not a {type(table).__name__} alone"
            )
        chosen = choose_columns(table.column_names, columns, "from_events")
        events = events_from_table(table, chosen, "from_events")
        return replace(events, source="from_events").rated_at_least(min_rating)

    def rated_at_least(self, min_rating: float | None) -> Interactions:
        """The events rated at least ``min_rating`` (all for None); a DataError without ratings."""
        if min_rating is None:
            return self
        if self.rating is None:
            raise DataError(
                f"{self.source or 'events'}: min_rating {min_rating:g} given, but the events have no rating"
            )
        kept = self.select(self.rating >= min_rating)
        if not len(kept):
            raise DataError(f"{self.source or 'events'}: no event is rated {min_rating:g} or more")
        return kept

    # ---------------------------------------------------------------- sizes
    def __len__(self) -> int:
        return len(self.user)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{t}={int((self.feedback == k).sum())}" for k, t in enumerate(self.feedback_types))
        return (
            f"Interactions({len(self):,} events, {self.n_users:,} users, {self.n_items:,} items; {kinds}"
            f"{'; ratings' if self.rating is not None else ''}"
            f"{'; timestamps' if self.timestamp is not None else ''}"
            f"{f'; {len(self.partitions)} partitions' if self.partitions is not None else ''})"
        )

    # ---------------------------------------------------------------- views
    def feedback_code(self, name: str) -> int:
        try:
            return self.feedback_types.index(name)
        except ValueError:
            raise KeyError(f"unknown feedback type {name!r}; this data has {list(self.feedback_types)}") from None

    def feedback_counts(self) -> dict[str, int]:
        """Events per feedback type, e.g. ``{"view": 900, "click": 90, "sale": 9}``."""
        return {t: int((self.feedback == k).sum()) for k, t in enumerate(self.feedback_types)}

    def select(self, mask: np.ndarray) -> Interactions:
        """Rows where ``mask`` is true (or the given row indices); vocabularies are kept unchanged."""

        def take(col: np.ndarray | None) -> np.ndarray | None:
            return None if col is None else col[mask]

        return replace(
            self,
            user=self.user[mask],
            item=self.item[mask],
            feedback=take(self.feedback),
            rating=take(self.rating),
            timestamp=take(self.timestamp),
            partition=take(self.partition),
        )

    def with_feedback(self, names: Iterable[str] | None) -> Interactions:
        """Only the events whose type is in ``names`` (all when ``None``)."""
        if names is None:
            return self
        codes = [self.feedback_code(n) for n in names]
        return self.select(np.isin(self.feedback, codes))

    def to_csr(self, n_users: int | None = None, n_items: int | None = None, binary: bool = True) -> sp.csr_matrix:
        """User × item matrix (float32). Binary (repeated events count once) unless ``binary=False``."""
        shape = (n_users or self.n_users, n_items or self.n_items)
        return user_item_matrix(self.user, self.item, shape, binary=binary)

    @classmethod
    def concat(cls, parts: Sequence[Interactions]) -> Interactions:
        """Stack several logs that share vocabularies (e.g. one per feedback type)."""
        first = parts[0]
        for p in parts[1:]:
            if p.users is not first.users or p.items is not first.items:
                raise ValueError("concat needs logs that share the same vocabulary objects")
        types: list[str] = []
        feedback = []
        for p in parts:
            remap = np.array([_index_or_add(types, t) for t in p.feedback_types], dtype=np.int8)
            feedback.append(remap[p.feedback])

        def cat(name: str) -> np.ndarray | None:
            cols = [getattr(p, name) for p in parts]
            return None if any(c is None for c in cols) else np.concatenate(cols)

        return cls(
            user=np.concatenate([p.user for p in parts]),
            item=np.concatenate([p.item for p in parts]),
            users=first.users,
            items=first.items,
            feedback=np.concatenate(feedback),
            feedback_types=tuple(types),
            rating=cat("rating"),
            timestamp=cat("timestamp"),
            partition=cat("partition"),
            partitions=first.partitions,
            source=first.source,
        )

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        arrays = {
            "user": self.user,
            "item": self.item,
            "feedback": self.feedback,
            "user_ids": self.users.ids,
            "item_ids": self.items.ids,
        }
        for name in ("rating", "timestamp", "partition"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        if self.partitions is not None:
            arrays["partition_ids"] = self.partitions.ids
        return save_artifact(
            directory,
            "interactions",
            arrays,
            extra={"feedback_types": list(self.feedback_types), "source": self.source},
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Interactions:
        a, manifest = load_artifact(directory, kind="interactions")
        return cls(
            user=a["user"],
            item=a["item"],
            users=Vocabulary(a["user_ids"]),
            items=Vocabulary(a["item_ids"]),
            feedback=a["feedback"],
            feedback_types=tuple(manifest["feedback_types"]),
            rating=a.get("rating"),
            timestamp=a.get("timestamp"),
            partition=a.get("partition"),
            partitions=Vocabulary(a["partition_ids"]) if "partition_ids" in a else None,
            source=manifest.get("source", ""),
        )


def user_item_matrix(
    users: np.ndarray, items: np.ndarray, shape: tuple[int, int], binary: bool = True
) -> sp.csr_matrix:
    """(n_users, n_items) float32 CSR of the (user, item) pairs; binary (repeats count once) unless
    ``binary=False`` (then entries count the repeats)."""
    data = np.ones(len(users), dtype=np.float32)
    m = sp.csr_matrix((data, (users, items)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m


def _index_or_add(values: list[str], v: str) -> int:
    if v not in values:
        values.append(v)
    return values.index(v)


def encode_shared(*columns: np.ndarray) -> tuple[Vocabulary, list[np.ndarray]]:
    """One vocabulary over several raw id columns (e.g. the user column of train and test files)."""
    lengths = [len(c) for c in columns]
    vocab, codes = Vocabulary.encode(np.concatenate([np.asarray(c) for c in columns]))
    return vocab, np.split(codes, np.cumsum(lengths)[:-1])


def dedupe_rows(a: np.ndarray) -> np.ndarray:
    """Replace repeats within each row by -1 and move the -1 slots to the end, keeping the order."""
    out = a.copy()
    s = np.sort(a, axis=1)
    order = np.argsort(a, axis=1, kind="stable")
    dup = np.zeros_like(a, dtype=bool)
    dup[:, 1:] = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    rows = np.nonzero(dup)[0]
    out[rows, order[dup]] = -1
    keep_order = np.argsort(out < 0, axis=1, kind="stable")
    return np.take_along_axis(out, keep_order, axis=1)
