"""The two evaluation protocols, exactly as ``../shared/README.md`` defines them, and prepared datasets.

*Strong generalization* (Liang et al. 2018, Mult-VAE; the seed paper's ML-20M setup): disjoint sets of
held-out users for validation and test; each held-out history is split at random 80% input / 20% target;
models never see held-out users while fitting and must fold them in. Recall@k divides by min(k, |target|).

*Weak generalization on fixed files* (BARS, Zhu et al. 2022): every user's history is the train file, the
targets are the test file. Hyper-parameters are chosen on the ``valid`` file when there is one, otherwise
on a seeded carve-out of train. Recall@k divides by |target|.

*Time* (one time-stamped event table, as a production log is): each user's events are cut by time — at a
global date (the last ``test_days`` days are the test period) or per user before their last
``leave_last`` target events. What comes after the cut is the target, what comes before is the input;
validation is the same cut applied once more to what precedes the test cut, and the final model trains on
everything before it. Input and target event types may differ (predict sales from views and clicks).
Recall@k divides by |target|, as under BARS.

All produce a :class:`PreparedData`: a training matrix for model selection, a validation set, a training
matrix for the final model, and a test set, all as CSR matrices over one item vocabulary.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec.data import PROTOCOLS
from ledrec.data.interactions import DataError, Interactions, Vocabulary, user_item_matrix
from ledrec.data.readers import Dataset
from ledrec.io import load_artifact, save_artifact


@dataclass
class EvalSet:
    """Held-out users: ``input`` is what a model sees (and what is excluded from ranking), ``target`` what
    it should find. Rows are aligned; every row has at least one target item."""

    input: sp.csr_matrix  # (n_users, n_items) float32 0/1
    target: sp.csr_matrix  # (n_users, n_items) float32 0/1
    user_ids: np.ndarray  # (n_users,) original user ids
    recall_normalization: str = "target"  # "min": hits / min(k, |target|) (strong); "target": hits / |target| (BARS)
    selection_metric: str = "ndcg@20"  # what model selection maximises on this set (NDCG@100 strong, @20 BARS)
    exclude: sp.csr_matrix | None = None  # items never ranked; None: the input items

    def __post_init__(self) -> None:
        if self.input.shape != self.target.shape:
            raise ValueError(f"input {self.input.shape} and target {self.target.shape} differ")
        if self.exclude is not None and self.exclude.shape != self.input.shape:
            raise ValueError(f"exclude {self.exclude.shape} and input {self.input.shape} differ")

    @property
    def excluded(self) -> sp.csr_matrix:
        return self.input if self.exclude is None else self.exclude

    @property
    def n_users(self) -> int:
        return self.input.shape[0]

    def subset(self, rows: np.ndarray) -> EvalSet:
        exclude = None if self.exclude is None else self.exclude[rows]
        return replace(
            self, input=self.input[rows], target=self.target[rows], user_ids=self.user_ids[rows], exclude=exclude
        )

    def with_protocol(self, protocol: str) -> EvalSet:
        strong = protocol == "strong"
        return replace(
            self,
            recall_normalization="min" if strong else "target",
            selection_metric="ndcg@100" if strong else "ndcg@20",
        )


@dataclass
class PreparedData:
    """Everything a run needs, protocol applied. ``fit_valid`` trains models while hyper-parameters are
    chosen on ``valid``; ``fit_test`` trains the final model that is scored on ``test``."""

    name: str
    protocol: str
    items: Vocabulary
    fit_valid: sp.csr_matrix  # (n_fit_users, n_items)
    valid: EvalSet
    fit_test: sp.csr_matrix
    test: EvalSet
    meta: dict[str, Any] = field(default_factory=dict)
    # Multi-feedback data (§4.3): what to predict and what to pre-train on, when they differ from the
    # training matrices (which then hold every input event); keys "fit_valid"/"fit_test" → matrix.
    targets: dict[str, sp.csr_matrix] = field(default_factory=dict)
    pretrain: dict[str, sp.csr_matrix] = field(default_factory=dict)
    # the time protocol only: every input event of the window, test period included — what a daily job refits
    # its chosen model on (targets["fit_all"] / pretrain["fit_all"] beside it when they differ)
    fit_all: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        self.valid = self.valid.with_protocol(self.protocol)
        self.test = self.test.with_protocol(self.protocol)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def recall_normalization(self) -> str:
        return self.test.recall_normalization

    @property
    def selection_metric(self) -> str:
        return self.test.selection_metric

    def summary(self) -> dict[str, Any]:
        def nnz(m: sp.csr_matrix) -> int:
            return int(m.nnz)

        return {
            "dataset": self.name,
            "protocol": self.protocol,
            "items": self.n_items,
            "fit_valid": {"users": self.fit_valid.shape[0], "interactions": nnz(self.fit_valid)},
            "valid": {"users": self.valid.n_users, "input": nnz(self.valid.input), "target": nnz(self.valid.target)},
            "fit_test": {"users": self.fit_test.shape[0], "interactions": nnz(self.fit_test)},
            "test": {"users": self.test.n_users, "input": nnz(self.test.input), "target": nnz(self.test.target)},
            **self.meta,
        }

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        arrays: dict[str, np.ndarray] = {"item_ids": self.items.ids}
        for name, m in self._matrices().items():
            arrays[f"{name}.indptr"] = m.indptr
            arrays[f"{name}.indices"] = m.indices
        arrays["valid.user_ids"] = self.valid.user_ids
        arrays["test.user_ids"] = self.test.user_ids
        shapes = {name: list(m.shape) for name, m in self._matrices().items()}
        return save_artifact(
            directory,
            "prepared",
            arrays,
            config=self.meta,
            extra={"name": self.name, "protocol": self.protocol, "shapes": shapes},
        )

    def side(self, which: str) -> dict[str, sp.csr_matrix]:
        """Extra fit arguments for ``which`` in {"fit_valid", "fit_test", "fit_all"}: ``targets``,
        ``pretrain_matrix``."""
        out = {}
        if which in self.targets:
            out["targets"] = self.targets[which]
        if which in self.pretrain:
            out["pretrain_matrix"] = self.pretrain[which]
        return out

    def _matrices(self) -> dict[str, sp.csr_matrix]:
        out = {
            "fit_valid": self.fit_valid,
            "valid.input": self.valid.input,
            "valid.target": self.valid.target,
            "fit_test": self.fit_test,
            "test.input": self.test.input,
            "test.target": self.test.target,
        }
        for name, split in (("valid", self.valid), ("test", self.test)):
            if split.exclude is not None:
                out[f"{name}.exclude"] = split.exclude
        out |= {f"targets.{k}": v for k, v in self.targets.items()}
        out |= {f"pretrain.{k}": v for k, v in self.pretrain.items()}
        if self.fit_all is not None:
            out["fit_all"] = self.fit_all
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PreparedData:
        a, manifest = load_artifact(directory, kind="prepared")

        def csr(name: str) -> sp.csr_matrix:
            indices = a[f"{name}.indices"]
            data = np.ones(len(indices), dtype=np.float32)
            return sp.csr_matrix((data, indices, a[f"{name}.indptr"]), shape=tuple(manifest["shapes"][name]))

        names = manifest["shapes"]

        def evalset(name: str) -> EvalSet:
            exclude = csr(f"{name}.exclude") if f"{name}.exclude" in names else None
            return EvalSet(csr(f"{name}.input"), csr(f"{name}.target"), a[f"{name}.user_ids"], exclude=exclude)

        return cls(
            name=manifest["name"],
            protocol=manifest["protocol"],
            items=Vocabulary(a["item_ids"]),
            fit_valid=csr("fit_valid"),
            valid=evalset("valid"),
            fit_test=csr("fit_test"),
            test=evalset("test"),
            meta=manifest["config"],
            targets={k.split(".", 1)[1]: csr(k) for k in names if k.startswith("targets.")},
            pretrain={k.split(".", 1)[1]: csr(k) for k in names if k.startswith("pretrain.")},
            fit_all=csr("fit_all") if "fit_all" in names else None,
        )


def is_prepared(path: str | os.PathLike[str]) -> bool:
    p = Path(path) / "manifest.json"
    return p.is_file() and '"kind": "prepared"' in p.read_text()[:200]


# ============================================================================================ strong
def strong_generalization(
    data: Interactions,
    *,
    min_rating: float | None = 3.5,
    min_user_positives: int = 5,
    heldout_users: float | int = 0.1,
    target_fraction: float = 0.2,
    feedback: Iterable[str] | None = None,
    seed: int = 0,
    name: str = "",
) -> PreparedData:
    """The Mult-VAE protocol (Liang et al. 2018, their ``preprocess`` notebook), with the shared README's
    threshold: keep ratings >= ``min_rating`` (Liang's code keeps > 3.5, i.e. >= 4 on half-star data; the
    README says >= 3.5), users with >= ``min_user_positives`` positives; hold out ``heldout_users`` users
    (a fraction, or a count) for validation and as many for test; items are those of the training users;
    each held-out user with >= 5 items gets ``int(target_fraction * n)`` random items as target, the rest
    as input (users with fewer items keep all as input and are not evaluated, as in Liang's code).
    """
    rng = np.random.default_rng(seed)
    data = data.with_feedback(feedback)
    if data.rating is not None and min_rating is not None:
        data = data.select(data.rating >= min_rating)
    x = data.to_csr()  # (users, items) binary: repeated events count once
    positives = np.diff(x.indptr)
    x = x[positives >= min_user_positives]
    user_ids = data.users.ids[positives >= min_user_positives]
    n_users = x.shape[0]
    n_heldout = heldout_users if isinstance(heldout_users, int) else round(heldout_users * n_users)
    if n_heldout < 1 or 2 * n_heldout >= n_users:
        raise DataError(
            f"{name or data.source}: {n_users} users with >= {min_user_positives} positives "
            f"cannot give {n_heldout} validation and {n_heldout} test users and keep any for training"
        )
    order = rng.permutation(n_users)
    train_rows = np.sort(order[: n_users - 2 * n_heldout])
    valid_rows = np.sort(order[n_users - 2 * n_heldout : n_users - n_heldout])
    test_rows = np.sort(order[n_users - n_heldout :])

    train = x[train_rows]
    train_items = np.flatnonzero(np.diff(train.tocsc().indptr) > 0)  # items seen by training users
    train = train[:, train_items]

    def heldout(rows: np.ndarray) -> EvalSet:
        m = x[rows][:, train_items].tocsr()
        inp, tgt = _split_rows(m, target_fraction, rng, min_items=5)
        keep = np.diff(tgt.indptr) > 0
        return EvalSet(inp[keep], tgt[keep], user_ids[rows][keep])

    valid = heldout(valid_rows)
    test = heldout(test_rows)
    meta = {
        "min_rating": min_rating,
        "min_user_positives": min_user_positives,
        "heldout_users": n_heldout,
        "target_fraction": target_fraction,
        "seed": seed,
        "feedback": None if feedback is None else list(feedback),
    }
    return PreparedData(
        name or data.source,
        "strong",
        Vocabulary(data.items.ids[train_items]),
        fit_valid=train,
        valid=valid,
        fit_test=train,
        test=test,
        meta=meta,
    )


def _split_rows(
    m: sp.csr_matrix, fraction: float, rng: np.random.Generator, min_items: int = 1
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per row, move ``int(fraction * n)`` random entries to a second matrix (rows with < min_items stay)."""
    m = m.tocsr()
    m.sort_indices()
    to_target = np.zeros(m.nnz, dtype=bool)
    for r in range(m.shape[0]):
        start, end = m.indptr[r], m.indptr[r + 1]
        n = end - start
        if n >= min_items:
            k = int(fraction * n)
            if fraction > 0 and k == 0 and n >= 2:
                k = 1
            to_target[start + rng.choice(n, size=k, replace=False)] = True
    return _mask_csr(m, ~to_target), _mask_csr(m, to_target)


def _mask_csr(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape, dtype=np.float32)


# ============================================================================================ fixed (BARS)
def fixed_split(
    ds: Dataset,
    *,
    valid_fraction: float = 0.1,
    feedback: Iterable[str] | None = None,
    pretrain_feedback: Iterable[str] | None = None,
    exclude: str = "history",
    seed: int = 0,
) -> PreparedData:
    """The BARS protocol on a dataset with fixed ``train``/``test`` (and maybe ``valid``) parts.

    History = train (events of ``feedback`` types; all by default); targets = test. Without a ``valid``
    part, each user with >= 2 train items of the target type (the test part's type) gives
    ``max(1, int(valid_fraction * n))`` random ones to validation (removed from every input type); the
    model chosen there is refit on the whole train before testing. Items never seen in train stay in the
    ranking (as misses).

    Multi-feedback data (Taobao: view, cart, buy; test = buys): the training matrices hold every input
    event, ``targets`` the target type only, ``pretrain`` the ``pretrain_feedback`` types (the paper
    pre-trains on views). ``exclude="history"`` never ranks an item of the user's history (so a viewed
    item cannot be recommended, and a test buy that was viewed is a certain miss);
    ``exclude="target"`` only excludes items already bought.
    """
    if not ds.is_fixed_split:
        raise DataError(
            f"{ds.path}: the BARS protocol needs fixed train/test files; this dataset has "
            f"parts {list(ds.parts)} (use --protocol strong)"
        )
    if exclude not in ("history", "target"):
        raise DataError(f"exclude must be 'history' or 'target', not {exclude!r}")
    rng = np.random.default_rng(seed)
    train_events = ds.parts["train"].with_feedback(feedback)
    train = train_events.to_csr()
    target_type = ds.parts["test"].feedback_types[0]
    multi = target_type in train_events.feedback_types and len(train_events.feedback_types) > 1
    train_targets = train_events.with_feedback([target_type]).to_csr() if multi else train
    pretrain_events = ds.parts["train"].with_feedback(pretrain_feedback) if pretrain_feedback else None
    test_target = ds.parts["test"].to_csr()
    if "valid" in ds.parts:
        fit_valid, carved = train, ds.parts["valid"].to_csr()
        how = "valid file"
    else:
        _, carved = _split_rows(train_targets, valid_fraction, rng, min_items=2)
        fit_valid = _subtract(train, carved)
        how = f"{valid_fraction:.0%} of train per user (seed {seed})"
    valid_targets = _subtract(train_targets, carved) if multi else fit_valid
    valid = eval_set(fit_valid, carved, ds.users.ids, valid_targets, valid_targets if exclude == "target" else None)
    test = eval_set(train, test_target, ds.users.ids, train_targets, train_targets if exclude == "target" else None)
    targets = {"fit_valid": valid_targets, "fit_test": train_targets} if multi else {}
    pretrain = {}
    if pretrain_events is not None:
        pre = pretrain_events.to_csr()
        pretrain = {"fit_valid": _subtract(pre, carved), "fit_test": pre}
    meta = {
        "validation": how,
        "seed": seed,
        "feedback": None if feedback is None else list(feedback),
        "target_feedback": target_type if multi else None,
        "pretrain_feedback": None if pretrain_feedback is None else list(pretrain_feedback),
        "exclude": exclude,
    }
    return PreparedData(
        ds.name,
        "bars",
        ds.items,
        fit_valid=fit_valid,
        valid=valid,
        fit_test=train,
        test=test,
        meta=meta,
        targets=targets,
        pretrain=pretrain,
    )


def eval_set(
    history: sp.csr_matrix,
    target: sp.csr_matrix,
    user_ids: np.ndarray,
    known: sp.csr_matrix | None = None,
    exclude: sp.csr_matrix | None = None,
) -> EvalSet:
    """Users with at least one target. A target the user already has (in ``known``, by default the
    history) is no target; ``exclude`` (by default the history) is never ranked, so with multi-feedback
    history a viewed test item stays a target that cannot be hit: a certain miss, not a dropped user."""
    target = _subtract(target, history if known is None else known)
    rows = np.flatnonzero(np.diff(target.indptr) > 0)
    return EvalSet(history[rows], target[rows], user_ids[rows], exclude=None if exclude is None else exclude[rows])


def _subtract(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """Entries of binary ``a`` that are not in binary ``b``."""
    out = (a - a.multiply(b)).tocsr()
    out.eliminate_zeros()
    return out.astype(np.float32)


# ============================================================================================ time
DAY = 86_400


def time_split(
    data: Interactions,
    *,
    test_days: float | None = None,
    leave_last: int | None = None,
    feedback: Iterable[str] | None = None,
    target_feedback: Iterable[str] | None = None,
    pretrain_feedback: Iterable[str] | None = None,
    exclude: str = "history",
    name: str = "",
    min_rating: float | None = None,
) -> PreparedData:
    """The time protocol (module docstring) on one event table with timestamps (``min_rating``: only the
    events rated at least this, e.g. 4 of 5 stars as a like). Exactly one of
    ``test_days`` (a global cut) and ``leave_last`` (per user) says where the test period starts.
    ``feedback``: input event types (default all); ``target_feedback``: the types to predict (default the
    inputs'); ``pretrain_feedback``: what the SVD is computed on (default the inputs). ``exclude="history"``
    never ranks an item of the input; ``"target"`` only items the user already had as a target."""
    where = name or data.source
    if data.timestamp is None:
        raise DataError(f"{where}: the time protocol needs timestamps; this data has none (use strong or bars)")
    data = replace(data, source=where).rated_at_least(min_rating)
    if (test_days is None) == (leave_last is None):
        raise DataError("the time protocol needs exactly one of --test-days and --leave-last")
    if exclude not in ("history", "target"):
        raise DataError(f"exclude must be 'history' or 'target', not {exclude!r}")
    inputs = list(feedback) if feedback else list(data.feedback_types)
    targets = list(target_feedback) if target_feedback else inputs
    for kind in {*inputs, *targets, *(pretrain_feedback or ())}:
        data.feedback_code(kind)  # KeyError (a DataError below) for a type the data does not have
    t = data.timestamp
    is_target = np.isin(data.feedback, [data.feedback_code(k) for k in targets])

    def cut(before: np.ndarray) -> np.ndarray:
        """(n_users,) the time from which a user's events (among ``before``) are targets."""
        out = np.full(data.n_users, np.iinfo(np.int64).max)
        if test_days is not None:
            end = t[before].max() if before.any() else 0
            out[:] = end - int(test_days * DAY) + 1  # the last test_days days, up to the latest event
            return out
        rows = np.flatnonzero(before & is_target)
        order = np.lexsort((-t[rows], data.user[rows]))  # per user, latest target first
        rows = rows[order]
        users = data.user[rows]
        rank = np.arange(len(rows)) - np.searchsorted(users, users)  # 0 = the user's latest target
        nth = rows[rank == leave_last - 1]  # each user's leave_last-th latest target (users with enough)
        out[data.user[nth]] = t[nth]
        return out

    everything = np.ones(len(data), dtype=bool)
    test_cut = cut(everything)
    before_test = t < test_cut[data.user]
    valid_cut = cut(before_test)
    before_valid = t < valid_cut[data.user]

    def matrix(mask: np.ndarray, kinds: list[str]) -> sp.csr_matrix:
        codes = [data.feedback_code(k) for k in kinds]
        keep = mask & np.isin(data.feedback, codes)
        return user_item_matrix(data.user[keep], data.item[keep], (data.n_users, data.n_items))

    fit_valid, fit_test = matrix(before_valid, inputs), matrix(before_test, inputs)
    known_valid, known_test = matrix(before_valid, targets), matrix(before_test, targets)
    valid_target = matrix(before_test & ~before_valid, targets)
    test_target = matrix(~before_test, targets)
    ids = data.users.ids
    excl = exclude == "target"
    valid = eval_set(fit_valid, valid_target, ids, known_valid, known_valid if excl else None)
    test = eval_set(fit_test, test_target, ids, known_test, known_test if excl else None)
    if not valid.n_users or not test.n_users:
        raise DataError(f"{where}: the time cut leaves no {'validation' if not valid.n_users else 'test'} targets")
    side = {"fit_valid": known_valid, "fit_test": known_test} if targets != inputs else {}
    if side:
        side["fit_all"] = matrix(everything, targets)
    pretrain = {}
    if pretrain_feedback:
        kinds = list(pretrain_feedback)
        pretrain = {
            "fit_valid": matrix(before_valid, kinds),
            "fit_test": matrix(before_test, kinds),
            "fit_all": matrix(everything, kinds),
        }
    rule = f"the last {test_days:g} days" if test_days is not None else f"each user's last {leave_last} targets"
    meta = {
        "split": f"test = {rule}; validation = the same cut before it",
        "input_feedback": inputs,
        "target_feedback": targets,
        "pretrain_feedback": None if pretrain_feedback is None else list(pretrain_feedback),
        "exclude": exclude,
        "test_days": test_days,
        "leave_last": leave_last,
    }
    if test_days is not None:  # one cut for every user: the times from which validation and test start
        meta["cuts"] = {"valid": int(valid_cut[0]), "test": int(test_cut[0])}
    return PreparedData(
        where, "time", data.items, fit_valid=fit_valid, valid=valid, fit_test=fit_test, test=test, meta=meta,
        targets=side, pretrain=pretrain, fit_all=matrix(everything, inputs),
    )  # fmt: skip


def prepare(
    ds: Dataset, protocol: str, *, seed: int = 0, feedback: Iterable[str] | None = None, **options: Any
) -> PreparedData:
    """Apply a protocol by name to a dataset."""
    if protocol == "strong":
        if ds.is_fixed_split:
            data = Interactions.concat([p for p in ds.parts.values()])
        else:
            data = ds.parts["all"]
        return strong_generalization(data, seed=seed, feedback=feedback, name=ds.name, **options)
    if protocol == "bars":
        return fixed_split(ds, seed=seed, feedback=feedback, **options)
    if protocol == "time":
        data = Interactions.concat(list(ds.parts.values())) if ds.is_fixed_split else ds.parts["all"]
        try:
            return time_split(data, feedback=feedback, name=ds.name, **options)
        except KeyError as exc:  # a feedback type the data does not have
            raise DataError(f"{ds.name}: {exc.args[0]}") from None
    raise DataError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
