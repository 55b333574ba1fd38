"""The one protocol every recommender follows (the contract test in ``tests/models`` checks each).

* ``fit(X)`` learns from a training user × item matrix and returns ``self``; learned attributes end in
  ``_`` (scikit-learn style). Models that tune themselves during training (early stopping) may also take
  ``validation``, an :class:`EvalSet` of held-out users.
* ``score(H)`` scores every item for a batch of *histories* ``H`` (n × I, users never seen in training:
  fold-in). No model keeps per-user parameters, so a new user needs no retraining.
* ``recommend(H, k)`` is the top-k of ``score`` without the history's own items.
* ``save(dir)`` / ``load(dir)`` round-trip the learned state as ``.npy`` arrays plus a JSON manifest.

Hyper-parameters are declared once per model as :class:`Option` objects; the CLI builds its flags from them.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from ledrec.config import Option
from ledrec.data.interactions import Interactions
from ledrec.data.splits import EvalSet
from ledrec.errors import ConfigError, InputError, check_ids, check_k
from ledrec.evaluate.ranking import top_k
from ledrec.io import load_artifact, save_artifact
from ledrec.similarity import exact_similar

RANDOM_STATE = Option("random_state", int, 0, "seed of every random choice (init, sampling, shuffling)", low=0)


class Recommender(ABC):
    name: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()
    uses_validation: ClassVar[bool] = False  # True: fit() selects checkpoints on a validation EvalSet
    # True: fit() also takes ``targets=`` and ``pretrain_matrix=`` (multi-feedback data, seed paper §4.3)
    accepts_side_matrices: ClassVar[bool] = False
    progress: bool = False  # show progress bars while fitting
    item_ids: np.ndarray | None = None  # original ids of the columns, when the caller knows them

    def __init__(self, **params: Any) -> None:
        known = {o.name: o for o in self.options}
        unknown = set(params) - set(known) - {"random_state"}
        if unknown:
            raise TypeError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        for o in self.options:
            setattr(self, o.name, o.check(params.get(o.name, o.default), self.name))
        self.random_state = RANDOM_STATE.check(params.get("random_state", 0), self.name)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give each model the signature and the parameter docs of its options (``help(LED)``,
        ``inspect.signature(LED)``), generated from the one declaration."""
        super().__init_subclass__(**kwargs)
        options = (*cls.options, RANDOM_STATE)
        cls.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.type.__name__)
             for o in options]
        )  # fmt: skip
        lines = [f"{o.name} : {o.type.__name__}, default {o.default!r}\n    {o.help} ({o.describe()})" for o in options]
        own = inspect.cleandoc(vars(cls).get("__doc__") or f"The {getattr(cls, 'name', cls.__name__)!r} recommender.")
        cls.__doc__ = own + "\n\nParameters\n----------\n" + "\n".join(lines)

    def selects_on_validation(self, n_items: int) -> bool:
        """Whether fitting with a validation set chooses anything (a checkpoint, an epoch) for ``n_items``."""
        return self.uses_validation

    def refit_params(self) -> dict[str, Any]:
        """Parameters for refitting on a bigger training matrix after selection (e.g. with the number of
        epochs that validation chose); by default the same parameters."""
        return self.get_params()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The options as given (scikit-learn's contract: ``fit`` never changes one; ``clone`` works)."""
        return {o.name: getattr(self, o.name) for o in self.options} | {"random_state": self.random_state}

    def used_params(self) -> dict[str, Any]:
        """The options as fitted: those left at None filled with what ``fit`` used (a preset's value, in
        ``params_``), and the variant an LED chose (``variant_``). Parameters themselves never change."""
        fitted = getattr(self, "params_", {})
        out = {k: (fitted.get(k) if v is None else v) for k, v in self.get_params().items()}
        if hasattr(self, "variant_"):
            out["variant"] = self.variant_
        return out

    def set_params(self, **params: Any) -> Self:
        """Set options, each checked as the constructor checks it (scikit-learn's contract)."""
        known = {o.name: o for o in (*self.options, RANDOM_STATE)}
        unknown = set(params) - set(known)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        for name, value in params.items():
            setattr(self, name, known[name].check(value, self.name))
        return self

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({inner})"

    # ------------------------------------------------------------------ the protocol
    @abstractmethod
    def fit(self, X: sp.csr_matrix, validation: EvalSet | None = None, *, show_progress: bool | None = None) -> Self:
        """Learn from a (n_users, n_items) 0/1 matrix (or :class:`Interactions`); return self.
        ``show_progress``: progress bars on stderr while fitting (None: the ``progress`` attribute)."""

    @abstractmethod
    def score(self, X: sp.csr_matrix) -> np.ndarray:
        """(n, n_items) float32 scores for the histories in ``X`` (rows = users not seen in training)."""

    def recommend(self, X: sp.csr_matrix, k: int = 20, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices (n, k), best first, and their scores; the history's items excluded."""
        k = check_k(k)
        X = self._check_input(X)
        scores = np.array(self.score(X), dtype=np.float32, copy=True)
        idx = top_k(scores, k, exclude=X if exclude_seen else None)
        return idx, np.take_along_axis(scores, idx, axis=1)

    def recommend_ids(
        self, history: Iterable[Any], k: int = 10, *, exclude_seen: bool = True, allowed: Iterable[Any] | None = None
    ) -> list[tuple[str, float]]:
        """The top-``k`` (item id, score) for one history of original item ids — a user the model never saw
        needs no retraining. Unknown ids are ignored (no known id: the cold-start answer); ``allowed``
        restricts the answer to those ids. Needs the item ids: fit on an
        :class:`~ledrec.data.interactions.Interactions`, or set ``item_ids``."""
        self._check_fitted()
        k, history = check_k(k), check_ids(history)
        allowed = None if allowed is None else check_ids(allowed, "allowed")
        if self.item_ids is None:
            raise ConfigError(f"{self.name}: no item ids; fit on Interactions (or set model.item_ids) first")
        index = self._id_index()
        known = np.unique([index[i] for i in history if i in index]).astype(np.int64)
        row = sp.csr_matrix(
            (np.ones(len(known), np.float32), (np.zeros(len(known), np.int64), known)), (1, self.n_items)
        )
        scores = np.array(self.score(row)[0], dtype=np.float64)
        if exclude_seen:
            scores[known] = -np.inf
        if allowed is not None:
            keep = np.zeros(len(scores), dtype=bool)
            keep[[index[i] for i in allowed if i in index]] = True
            scores[~keep] = -np.inf
        top = np.argsort(-scores, kind="stable")[: min(k, int(np.isfinite(scores).sum()))]
        return [(str(self.item_ids[i]), float(scores[i])) for i in top]

    def recommend_frame(self, events: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None) -> Any:
        """The top-``k`` of every user of ``events`` (an :class:`Interactions`, or a table or columns that
        :meth:`Interactions.from_events` reads), each from their own history by this model's item ids
        (unknown ids ignored: a user with none gets the cold-start answer), as an Arrow table with columns
        user, rank (1 = best), item, score — ``.to_pandas()`` makes it a DataFrame. ``items``: an item table
        (:class:`~ledrec.data.items.ItemTable` or its file) whose title, category, … columns are joined on."""
        import pyarrow as pa

        from ledrec.data.items import ItemTable, read_items

        meta = items if items is None or isinstance(items, ItemTable) else read_items(items)

        k = check_k(k)
        self._check_fitted()
        if self.item_ids is None:
            raise ConfigError(f"{self.name}: no item ids; fit on Interactions (or set model.item_ids) first")
        if not isinstance(events, Interactions):
            events = Interactions.from_events(events)
        columns = np.array([self._id_index().get(str(i), -1) for i in events.items.ids.tolist()], dtype=np.int64)
        known = columns[events.item] >= 0
        histories = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (events.user[known], columns[events.item][known])),
            shape=(events.n_users, self.n_items),
        )
        histories.data[:] = 1.0  # (a repeated event counts once)
        top, scores = self.recommend(histories, k, exclude_seen)
        kept = np.isfinite(scores)  # (fewer than k items left after the exclusions)
        users = np.repeat(np.arange(events.n_users), top.shape[1]).reshape(top.shape)
        ranks = np.tile(np.arange(1, top.shape[1] + 1), (events.n_users, 1))
        ids = np.asarray(self.item_ids).astype(str)
        table = pa.table(
            {
                "user": pa.array(events.users.ids[users[kept]]),
                "rank": pa.array(ranks[kept].astype(np.int32)),
                "item": pa.array(ids[top[kept]]),
                "score": pa.array(scores[kept].astype(np.float32)),
            }
        )
        return table if meta is None else meta.join(table)

    # ------------------------------------------------------------------ item-item
    def similarity_vectors(self) -> np.ndarray | None:
        """(I, d) unit rows whose inner product is this model's item-item similarity (an LED: its score
        profile, :mod:`ledrec.similarity`; a factor model: the cosine of its item factors), or None: the
        one-item-history score answers instead."""
        return None

    def similar_items(self, items: Any, k: int = 10) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """The ``k`` items most alike to an item, as (item id, similarity) best first — for one id, a list;
        for a list of ids, one list each (batched). Similarity: the cosine of :meth:`similarity_vectors`
        where the model has them, else the score the model gives each item for a one-item history (an
        item-item model's own relation). An item the model has no evidence for (a zero vector) is alike to
        nothing: an empty list. Unknown ids are an :class:`InputError`; docs/similar.md measures the choice."""
        self._check_fitted()
        k = check_k(k)
        single = isinstance(items, str | bytes | int | np.integer)
        wanted = check_ids([items] if single else items, "items")
        if self.item_ids is None:
            raise ConfigError(f"{self.name}: no item ids; fit on Interactions (or set model.item_ids) first")
        index = self._id_index()
        unknown = [i for i in wanted if i not in index]
        if unknown:
            raise InputError(f"{self.name}.similar_items: unknown item id(s) {unknown[:3]} ({len(unknown)} in all)")
        rows = np.array([index[i] for i in wanted], dtype=np.int64)
        unit = self.similarity_vectors()
        ids = np.asarray(self.item_ids).astype(str)
        answers = []
        if unit is not None:
            for i in rows:
                top, scores = exact_similar(unit, int(i), k)
                answers.append([(str(ids[j]), float(s)) for j, s in zip(top, scores, strict=True)])
        else:
            one_item = sp.csr_matrix(
                (np.ones(len(rows), np.float32), (np.arange(len(rows)), rows)), shape=(len(rows), self.n_items)
            )
            scores = np.array(self.score(one_item), dtype=np.float64)
            scores[np.arange(len(rows)), rows] = -np.inf
            for r in scores:
                top = np.lexsort((np.arange(len(r)), -r))[: min(k, len(r) - 1)]
                answers.append([(str(ids[j]), float(r[j])) for j in top])
        return answers[0] if single else answers

    def _id_index(self) -> dict[str, int]:
        ids = self.item_ids
        cached = getattr(self, "_id_index_cache", None)
        if cached is None or cached[0] is not ids:
            cached = (ids, {str(x): i for i, x in enumerate(np.asarray(ids).tolist())})
            self._id_index_cache = cached
        return cached[1]

    def _training_matrix(self, X: Any, show_progress: bool | None = None) -> sp.csr_matrix:
        """``X`` as a float32 CSR. An :class:`~ledrec.data.interactions.Interactions` (the user's own events,
        with their ids) becomes its 0/1 user × item matrix, and the model keeps the item ids. Every ``fit``
        starts here, so its ``show_progress=`` (None: keep the ``progress`` attribute) is applied here too."""
        if show_progress is not None:
            self.progress = bool(show_progress)
        if isinstance(X, Interactions):
            self.item_ids = X.items.ids
            X = X.to_csr()
        X = self._as_matrix(X, "fit")
        if X.shape[0] == 0 or X.shape[1] == 0 or X.nnz == 0:
            raise ConfigError(f"{self.name}.fit: no interactions to learn from (a {X.shape[0]} x {X.shape[1]} matrix)")
        return X

    def _as_matrix(self, X: Any, method: str) -> sp.csr_matrix:
        """``X`` (a scipy sparse matrix or a 2-D numeric numpy array of users × items, finite and >= 0) as
        float32 CSR; anything else — a DataFrame or Arrow table of events above all, which scipy would turn
        into a matrix of its column names — an :class:`InputError` saying what to pass."""
        if not (sp.issparse(X) or isinstance(X, np.ndarray)):
            raise InputError(
                f"{self.name}.{method} takes ledrec.Interactions or a users x items matrix (scipy.sparse or a "
                f"2-D numpy array), not {type(X).__module__.split('.')[0]}.{type(X).__name__}; for a table of "
                "events: ledrec.Interactions.from_events(table['user'], table['item'])"
            )
        if X.ndim != 2 or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise InputError(f"{self.name}.{method}: a 2-D numeric matrix is needed, not {X.ndim}-D of {X.dtype}")
        X = sp.csr_matrix(X, dtype=np.float32)
        if not np.all(np.isfinite(X.data)) or (X.data < 0).any():
            raise ConfigError(f"{self.name}.{method}: the matrix holds negative, NaN or infinite values")
        return X

    @property
    def n_items(self) -> int:
        return int(self.n_items_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{self.name} is not fitted; call fit() first")

    def _check_input(self, X: Any) -> sp.csr_matrix:
        self._check_fitted()
        X = self._as_matrix(X, "score")
        if X.shape[1] != self.n_items_:
            raise ConfigError(f"{self.name}: histories have {X.shape[1]} items, the model {self.n_items_}")
        return X

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (default: every attribute ending in ``_`` that is an array)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and isinstance(v, np.ndarray)}

    def save(self, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        self._check_fitted()
        scalars = {k: v for k, v in vars(self).items() if k.endswith("_") and isinstance(v, int | float | str)}
        arrays = self.state()
        if self.item_ids is not None:  # a saved model keeps its item ids
            arrays = {**arrays, "item_ids": np.asarray(self.item_ids).astype(str)}
        return save_artifact(
            directory,
            "model",
            arrays,
            config=self.get_params(),
            extra={"model": self.name, "fitted": scalars, **(extra or {})},
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = False) -> Self:
        arrays, manifest = load_artifact(directory, kind="model", mmap=mmap)
        if manifest["model"] != cls.name:
            raise ValueError(f"{directory} holds a {manifest['model']!r} model, not {cls.name!r}")
        model = cls(**manifest["config"])
        for k, v in {**manifest["fitted"], **arrays}.items():
            setattr(model, k, v)
        return model
