"""The daily job of the seed paper (§6.1, §6.3, Figure 3), one catalogue (country, merchant) at a time:

    events ─► pre-train (PMI + randomized SVD) ─► train LED ─► export + index ─► holdout ─► gate ─► publish

* **events**: one catalogue's window of the log, streamed (``ledrec.data.stream``), cut by time: the last
  ``holdout_days`` are the holdout (users' earlier events the input, their events in it the targets), the
  same cut once more before it is LED's validation, everything before the holdout trains.
* **resumable**: every stage writes its output under ``WORK/<catalogue>/<stage>-<key>``, where the key is
  a hash of the stage's inputs (the events' contents, the upstream outputs' checksums, the options that
  matter, the code version). A stage whose key exists is not recomputed; LED checkpoints every epoch, so a
  killed run resumes inside training too.
* **gate**: the new model and the published one are both scored on the same holdout, by the same exact
  scoring of their serving forms; the new one is published only if its Recall@k is not below the
  published one's by more than ``gate_margin`` (relative). The report states both. On a holdout of fewer
  than ``min_holdout_users`` users the comparison is noise (the standard error of a mean recall is up to
  0.5/sqrt(n)): the published model keeps serving — replacing a model is the action that needs evidence,
  keeping it is not — and the report warns; a first version is published, with the warning, since there
  is nothing else to serve.
* **catalogues**: the values of the partition column; a log without one has one catalogue, ``all``
  (:data:`ledrec.export.publish.UNPARTITIONED`).
* **publish**: a new immutable version directory with its release manifest, ``current`` switched
  atomically, the last ``keep`` versions kept (``ledrec.export.publish``). A running ``ledrec serve ROOT``
  follows ``current`` by itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ledrec import __version__
from ledrec.data.interactions import DataError
from ledrec.data.splits import EvalSet, PreparedData, time_split
from ledrec.data.stream import EventSource, parse_time, window
from ledrec.errors import ConfigError
from ledrec.evaluate.metrics import ndcg_at_k, recall_at_k
from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.io import MANIFEST, load_artifact, read_manifest, save_artifact, write_json
from ledrec.monitor import measured
from ledrec.pipeline.config import PipelineConfig
from ledrec.serve.loading import load_retriever
from ledrec.serve.retriever import RetrieverConfig

log = logging.getLogger(__name__)
HOLDOUT = "holdout.json"  # the candidate's holdout metrics, beside its export
MODEL, FIT = "model", "fit.json"  # a fit's saved LED, and what it used and chose
TIMELINES = "timelines"  # (users, items) by user and time, inside the events stage, for a pre-training window


def run_pipeline(config: PipelineConfig, progress: bool = True) -> dict[str, Any]:
    """Run every catalogue; returns the report (also written to OUT/reports/)."""
    start = time.perf_counter()
    columns = {"partition": config.partition_column} if config.partition_column else None
    _check_out(config.out)
    source = EventSource.open(config.events, columns)
    work = config.work
    work.mkdir(parents=True, exist_ok=True)
    with _exclusive(work / ".lock", config.out):
        report: dict[str, Any] = {"events": config.events, "config": config.as_dict(), "catalogues": {}}
        with measured(report.setdefault("scan", {})):
            digest = source.digest(cache=work / "file-digests.json")
            until = parse_time(config.until) if config.until else None
            latest = source.latest(until)
            since = window(latest, config.days, config.since or None)
            names = _catalogues(config, source, since, until, latest)
        report["window"] = {"since": since, "latest": latest, "until": until, "events_digest": digest}
        report["warnings"] = [source.time_note] if source.time_note else []
        _say(progress, f"events {config.events}: {len(names)} catalogue(s), window {_day(since)} .. {_day(latest)}")
        for name in names:
            part = run_catalogue(config, source, digest, name, (since, until), progress)
            report["catalogues"][name] = part
            report["warnings"] += [f"catalogue {name!r}: {w}" for w in part["warnings"]]
        report["wall_s"] = round(time.perf_counter() - start, 2)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        write_json(Path(config.out) / "reports" / f"{stamp}.json", report)
    return report


def _check_out(out: str) -> None:
    """``out`` must be a published root, or a folder the pipeline may make one of (new, empty, or holding
    only what a first run left before it registered a catalogue): never a run, an export or the events."""
    from ledrec.export.directory import describe, identify

    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"out {out}: a file; the pipeline writes a published root, a folder")
    if not root.is_dir() or publish.is_published(root):
        return
    others = sorted(p.name for p in root.iterdir() if p.name not in (".work", "reports"))
    if others:
        raise ConfigError(
            f"out {out}: {describe(identify(root))} holding {', '.join(others[:5])}, not a published root: "
            "give a new or empty folder (or the out of an earlier pipeline run)"
        )


def _catalogues(
    config: PipelineConfig, source: EventSource, since: int | None, until: int | None, latest: int
) -> list[str]:
    """The catalogues to run: those asked for (each must have events in the window), else every value of
    the partition column in the window; the one catalogue of a log without a partition column is named
    :data:`~ledrec.export.publish.UNPARTITIONED`. A window that selects nothing, or a published root that
    holds the catalogues of another kind of log, is an error naming the dates or the catalogues."""
    if since is not None and since > latest:
        raise DataError(
            f"{config.events}: the window starts at {_day(since)}, after the latest event ({_day(latest)}): "
            "it selects nothing; give an earlier since (or days)"
        )
    asked = config.list("catalogues")
    known = set(publish.catalogues(config.out)) if publish.is_published(config.out) else set()
    if not source.has_partition:
        if asked:
            raise ConfigError(
                f"catalogues = {asked} given, but {config.events} has no partition column (partition, country, "
                "merchant, catalog, or the one partition_column names)"
            )
        name = publish.unpartitioned(config.out)
        if known - {name}:
            raise ConfigError(
                f"{config.out} holds the catalogues {sorted(known)[:10]} of a log with a partition column, and "
                f"{config.events} has none: publish it to another out (or name its column: partition_column)"
            )
        return [name]
    present = source.catalogues(since, until)
    missing = sorted(set(asked or ()) - set(present))
    if missing:
        raise DataError(
            f"{config.events}: no events of catalogue(s) {missing[:10]} from {_day(since)} to {_day(latest)}; "
            f"the window has {present[:20]}"
        )
    if publish.LEGACY_UNPARTITIONED in known or any(_unpartitioned_release(config.out, n) for n in known):
        raise ConfigError(
            f"{config.out} holds the one catalogue of a log without a partition column, and {config.events} has "
            f"one ({source.columns['partition']!r}): publish it to another out"
        )
    return asked or present


def _unpartitioned_release(root: str, name: str) -> bool:
    """Whether catalogue ``name`` of ``root`` was published from a log without a partition column."""
    if name != publish.UNPARTITIONED:
        return False
    folder = publish.catalogues(root)[name]
    live = publish.current(folder)
    release = folder / publish.VERSIONS / live / publish.RELEASE if live else None
    if release is None or not release.is_file():
        return False
    return json.loads(release.read_text()).get("inputs", {}).get("partition_column", "") is None


def run_catalogue(
    config: PipelineConfig,
    source: EventSource,
    digest: str,
    name: str,
    span: tuple[int | None, int | None],
    progress: bool,
) -> dict[str, Any]:
    """One catalogue through every stage; returns its part of the report."""
    folder = publish.register(config.out, name)
    work = config.work / folder.name
    stages: dict[str, dict[str, Any]] = {}
    say = lambda text: _say(progress, f"[{name or 'all'}] {text}")  # noqa: E731

    split_options = {k: config.values[k] for k in ("holdout_days", "input_feedback", "target_feedback")}
    split_options |= {k: config.values[k] for k in ("pretrain_feedback", "exclude", "window", "holdout_users", "seed")}
    split_options["min_rating"] = config.values["min_rating"]
    events_dir = work / ("events-" + _key(digest, name, span, split_options))
    with _stage(stages, "events", events_dir, say) as record:
        if not record["cached"]:
            _atomic_dir(events_dir, lambda tmp: _events(config, source, name, span, tmp))
    data = PreparedData.load(events_dir)
    stages["events"] |= {"items": data.n_items, **_counts(data)}
    keep: set[Path | None] = {events_dir}
    dim = config.led.get("dim")
    if dim is not None and data.n_items <= dim:
        # every start is an SVD (or spectral) of rank dim: it cannot have more dimensions than items
        raise DataError(
            f"{Path(config.events).name}[{name}]: {data.n_items} item(s) with events in the window, too few for "
            f"LED's dim {dim} (its SVD start needs more items than dimensions): leave the catalogue out "
            "(catalogues = ...), widen the window, or lower [led] dim"
        )
    fits = Fits(config, data, events_dir, work, name, progress, keep)

    # every candidate once: trained on the window before the validation cut, scored once on validation
    candidates = fits.candidates(stages, say)
    usable = [c for c in candidates if "validation" in c]
    if not usable:
        raise DataError(f"{config.events}[{name}]: no variant could be trained: {candidates}")
    metric = f"recall@{config.k}"
    winner = max(usable, key=lambda c: c["validation"][metric])  # (the first of equals: the list's order)
    say(f"chose {winner['variant']} ({metric} {winner['validation'][metric]:.4f} on validation)")

    # the winner on the window before the holdout: what the gate scores on the holdout
    trained = fits.fit(winner["refit_params"], "fit_test", stages, "train", say)
    export_dir = work / ("export-" + _key(_digest(trained / MODEL), name))
    keep.add(export_dir)
    with _stage(stages, "export", export_dir, say, marker=HOLDOUT) as record:
        if not record["cached"]:
            _atomic_dir(export_dir, lambda tmp: _export(trained, name, tmp, data, config))
    candidate = json.loads((export_dir / HOLDOUT).read_text())
    stages["export"] |= candidate["index"]
    published_dir = export_dir
    if config.refit:  # then on the whole window, holdout included: what is published is as fresh as the data
        refitted = fits.fit(winner["refit_params"], "fit_all", stages, "refit", say)
        published_dir = work / ("export-" + _key(_digest(refitted / MODEL), name, "refit"))
        keep.add(published_dir)
        with _stage(stages, "refit export", published_dir, say) as record:
            if not record["cached"]:
                _atomic_dir(published_dir, lambda tmp: _export(refitted, name, tmp, data, config, holdout=False))
        candidate["content_version"] = read_manifest(published_dir)["config"]["content_version"]

    out = {"stages": stages, "candidate": candidate["metrics"], "version": None, "warnings": []}
    out["variant"], out["candidates"] = winner["variant"], candidates
    with measured(stages.setdefault("gate+publish", {})):
        inputs = (span, digest, source.columns.get("partition"))
        choice = {"candidates": candidates, "variant": winner["variant"], "refit": config.refit}
        out |= _gate_and_publish(config, name, folder, published_dir, data, candidate, stages, inputs, choice)
    say(f"{out['decision']}: {out['reason']}")
    for warning in out["warnings"]:
        log.warning("[%s] %s", name, warning)
    _clean(work, keep=keep)
    return out


# ------------------------------------------------------------------------------------------ stages
def _events(
    config: PipelineConfig, source: EventSource, name: str, span: tuple[int | None, int | None], out: Path
) -> None:
    """The catalogue's window, split by time (a PreparedData artifact); with a pre-training ``window``
    also the time-ordered timelines before the holdout (``out/timelines``: users, items)."""
    events = source.read(name, *span)
    split = time_split(
        events,
        test_days=config.holdout_days,
        feedback=config.list("input_feedback"),
        target_feedback=config.list("target_feedback"),
        pretrain_feedback=config.list("pretrain_feedback"),
        exclude=config.exclude,
        name=f"{Path(config.events).name}[{name or 'all'}]",
        min_rating=config.min_rating,
    )
    split = _sampled(split, config.holdout_users, config.seed)
    split.save(out)
    if config.window is not None:
        kinds = config.list("pretrain_feedback") or config.list("input_feedback") or list(events.feedback_types)
        keep = np.isin(events.feedback, [events.feedback_code(k) for k in kinds])
        order = np.lexsort((events.timestamp[keep], events.user[keep]))  # by user, then time
        # (the split keeps the events' item vocabulary: the same columns); every cut reads its part by time
        timelines = {k: getattr(events, k)[keep][order] for k in ("user", "item", "timestamp")}
        save_artifact(out / TIMELINES, "timelines", timelines, config={"feedback": kinds})


def _sampled(split: PreparedData, users: int, seed: int) -> PreparedData:
    """At most ``users`` holdout (and validation) users, a seeded sample: every evaluation of the run —
    LED's validation, the harness's test, the gate's — costs O(users · items · d); the standard error of a
    mean of 10,000 per-user recalls (each in [0, 1]) is at most .005."""
    rng = np.random.default_rng(seed)

    def sample(evalset: EvalSet) -> EvalSet:
        if evalset.n_users <= users:
            return evalset
        return evalset.subset(np.sort(rng.choice(evalset.n_users, size=users, replace=False)))

    return replace(split, valid=sample(split.valid), test=sample(split.test))


class Fits:
    """The LED fits of one catalogue's run, each on one of the split's training windows — ``fit_valid``
    (before the validation cut: the candidates), ``fit_test`` (before the holdout: what the gate scores),
    ``fit_all`` (the whole window: what is published) — each in a folder keyed by what it learns from and
    with, so that a rerun on unchanged inputs trains nothing and a killed one resumes (a trained LED
    checkpoints every epoch)."""

    def __init__(
        self,
        config: PipelineConfig,
        data: PreparedData,
        events_dir: Path,
        work: Path,
        name: str,
        progress: bool,
        keep: set[Path | None],
    ) -> None:
        self.config, self.data, self.events_dir, self.work, self.name = config, data, events_dir, work, name
        self.progress, self.keep = progress, keep
        self.events_key = _digest(events_dir)

    def variants(self) -> list[dict[str, Any]]:
        """LED's options for each variant of ``variants``: the [led] table's options that the variant has,
        the SVD start for a trained one unless the table says otherwise (the paper's production choice)."""
        from ledrec.models.led import VARIANTS, TrainedLED

        out = []
        for variant in self.config.list("variants") or []:
            cls = VARIANTS[variant]
            own = {o.name for o in cls.options}
            own -= {"checkpoint_dir", "embeddings"}  # (each fit has its own)
            params = {k: v for k, v in self.config.led.items() if k in own}
            if cls is TrainedLED:
                params.setdefault("init", "svd")
            out.append({"variant": variant, **params})
        return out

    def candidates(self, stages: dict[str, Any], say: Callable[[str], None]) -> list[dict[str, Any]]:
        """Each variant trained once on ``fit_valid`` and scored once on validation through its serving form
        (the exact top-k the service would answer); a variant that cannot learn from this data (wls with
        targets other than the inputs) is listed with why."""
        from ledrec.export.mips import from_model
        from ledrec.models.led import LED

        rows = []
        for params in self.variants():
            stage = f"candidate {params['variant']}"
            try:
                folder = self.fit(params, "fit_valid", stages, stage, say)
            except ConfigError as exc:
                stages.pop(stage, None)
                rows.append({"variant": params["variant"], "skipped": str(exc)})
                say(f"{stage}: skipped ({exc})")
                continue
            model = LED.load(folder / MODEL)
            catalogue = {self.name: np.arange(self.data.n_items, dtype=np.int64)}
            serving = from_model(model, self.data.items.ids, catalogue)
            c = self.config
            ids = self.data.items.ids
            validation = holdout_metrics(serving, self.data.valid, ids, c.k, self.name, c.holdout_users)
            info = json.loads((folder / FIT).read_text())
            rows.append({"variant": params["variant"], "validation": validation, **info})
        return rows

    def fit(
        self, params: dict[str, Any], which: str, stages: dict[str, Any], stage: str, say: Callable[[str], None]
    ) -> Path:
        """LED with ``params`` fitted on the window ``which``; its folder (the model and ``fit.json``)."""
        params = {k: v for k, v in params.items() if v is not None and k not in ("checkpoint_dir", "embeddings")}
        params.pop("random_state", None)
        inputs = (self.events_key, which, params, self.config.seed, self.config.window, self.config.engine)
        folder = self.work / f"fit-{which.removeprefix('fit_')}-{_key(*inputs)}"
        self.keep.add(folder)
        with _stage(stages, stage, folder, say, marker=FIT) as record:
            if not record["cached"]:
                _atomic_dir(folder, lambda tmp: self._fit(params, which, tmp, folder.name))
        info = json.loads((folder / FIT).read_text())
        stages[stage] |= {k: info[k] for k in ("variant", "fit_s", "epochs")} | info["pretrain"]
        return folder

    def _fit(self, params: dict[str, Any], which: str, out: Path, name: str) -> None:
        from ledrec.models.led import LED

        data = self.data
        X = {"fit_valid": data.fit_valid, "fit_test": data.fit_test, "fit_all": data.fit_all}[which]
        if X is None:
            raise ConfigError(f"{self.events_dir}: an events stage of an earlier version: delete the work folder")
        probe = LED(**params, random_state=self.config.seed)
        trained = probe.candidates(X.shape[1], separate_targets=which in data.targets)[0] in ("full", "project")
        if trained:
            checkpoint = self.work / f"ckpt-{name}"
            self.keep.add(checkpoint)
            params = {**params, "checkpoint_dir": str(checkpoint)}
            if probe.effective("init", X.shape[1]) == "svd" and (self.config.window or self.config.engine == "spark"):
                dim = probe.effective("dim", X.shape[1])
                params["embeddings"] = str(self.pretrained(which, dim, probe))
        model = LED(**params, random_state=self.config.seed)
        model.item_ids, model.progress = data.items.ids, self.progress
        t0 = time.perf_counter()
        model.fit(X, validation=data.valid if which == "fit_valid" else None, **data.side(which))
        fit_s = time.perf_counter() - t0
        model.save(out / MODEL)
        refit = {k: v for k, v in model.refit_params().items() if k not in ("checkpoint_dir", "embeddings")}
        write_json(
            out / FIT,
            {
                "variant": model.variant_,
                "fit_s": round(fit_s, 2),
                "epochs": len([h for h in model.history_ if h.get("epoch", 0) > 0]),
                "best_epoch": model.best_epoch_,
                "pretrain": {k: v for k, v in getattr(model, "pretrain_stats_", {}).items() if np.isscalar(v)},
                "params": model.used_params() | {"checkpoint_dir": None, "embeddings": None},
                "refit_params": refit,
            },
        )

    def pretrained(self, which: str, dim: int, probe: Any) -> Path:
        """PMI + randomized SVD of the window ``which`` (the pre-training feedback before its cut: a model
        chosen on validation never pre-trains on the validation period), on Spark or with a pair window."""
        from ledrec.pretrain import PretrainConfig, pretrain

        n = self.data.n_items
        settings = PretrainConfig(
            dim=dim,
            alpha=probe.effective("svd_alpha", n),
            min_count=probe.effective("svd_min_count", n),
            power=probe.effective("svd_power", n),
            n_iter=probe.effective("svd_iter", n),
            window=self.config.window,
            seed=self.config.seed,
        )
        key = _key(self.events_key, which, settings, self.config.engine)
        folder = self.work / f"pretrain-{which.removeprefix('fit_')}-{key}"
        self.keep.add(folder)
        if (folder / MANIFEST).is_file():
            return folder
        data = self.data
        if self.config.window is not None:
            arrays, _ = load_artifact(self.events_dir / TIMELINES, kind="timelines")
            cut = {"fit_valid": data.meta["cuts"]["valid"], "fit_test": data.meta["cuts"]["test"]}.get(which)
            before = slice(None) if cut is None else arrays["timestamp"] < cut
            users, items = arrays["user"][before], arrays["item"][before]
        else:
            inputs = {"fit_valid": data.fit_valid, "fit_test": data.fit_test, "fit_all": data.fit_all}[which]
            matrix = data.pretrain.get(which, inputs)
            users, items = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)), matrix.indices
        if self.config.engine == "spark":
            from ledrec.pretrain.spark import spark_pretrain_events

            master = self.config.master
            embeddings = spark_pretrain_events(users, items, n, settings, item_ids=data.items.ids, master=master)
        else:
            embeddings = pretrain(config=settings, events=(users, items), n_items=n, item_ids=data.items.ids)
        _atomic_dir(folder, embeddings.save)
        return folder


def _export(
    fitted: Path, name: str, out: Path, data: PreparedData, config: PipelineConfig, holdout: bool = True
) -> None:
    """The serving form of a fitted LED with one catalogue named after the partition, its index built and
    self-checked exactly as the service will (``load_retriever``), and (``holdout``) its holdout metrics."""
    model = ServingModel.from_run(fitted / MODEL)
    model = replace(model, partitions={name: np.arange(len(model.item_ids), dtype=np.int64)}, info=model.info)
    model.save(out)
    retriever = load_retriever(out, RetrieverConfig(cache_dir=str(out / "index-cache")))
    loaded = retriever.model
    if not holdout:  # (a model fitted on the holdout: its score there would say nothing)
        return
    metrics = _holdout(loaded, data, config, name)
    index = {"index": type(retriever.indexes[name]).__name__, "index_items": len(loaded.item_ids)}
    cache = out / "index-cache"
    index["index_mib"] = round(sum(p.stat().st_size for p in cache.glob("*")) / 2**20, 1) if cache.is_dir() else 0.0
    write_json(out / HOLDOUT, {"metrics": metrics, "content_version": loaded.version, "index": index})


def _gate_and_publish(
    config: PipelineConfig,
    name: str,
    folder: Path,
    export_dir: Path,
    data: PreparedData,
    candidate: dict[str, Any],
    stages: dict[str, Any],
    inputs: tuple[tuple[int | None, int | None], str, str | None],
    choice: dict[str, Any],
) -> dict[str, Any]:
    (since, until), digest, partition_column = inputs
    live = publish.current(folder)
    metric = f"recall@{config.k}"
    new = candidate["metrics"][metric]
    incumbent = None
    users = int(data.test.n_users)  # holdout users with a target (at most holdout_users, sampled)
    warnings = []
    if users < config.min_holdout_users:
        warnings.append(
            f"the holdout has {users} users, fewer than min_holdout_users ({config.min_holdout_users}): too few "
            f"to compare models on ({metric}'s standard error is up to {0.5 / max(users, 1) ** 0.5:.2f})"
        )
    # the floor any model must clear: the most popular items of the training window, on the same holdout
    popularity = _holdout(_popularity(data, name), data, config, name)
    if new <= popularity[metric]:
        warnings.append(
            f"the new model's {metric} {new:.4f} is not above popularity's {popularity[metric]:.4f} on the holdout"
        )
    if live is not None:
        served = ServingModel.load(folder / publish.VERSIONS / live)
        if served.version == candidate["content_version"]:
            reason = f"the published {live} is this model"
            return {"decision": "unchanged", "reason": reason, "version": live, "warnings": warnings}
        incumbent = holdout_metrics(
            served, data.test, data.items.ids, config.k, name, config.holdout_users, config.seed
        )
        floor = (1.0 - config.gate_margin) * incumbent[metric]
        refused = {"decision": "refused", "version": live, "published": incumbent, "warnings": warnings}
        refused["popularity"] = popularity
        if new <= popularity[metric]:
            refused["reason"] = (
                f"{metric} {new:.4f}, not above popularity's {popularity[metric]:.4f} on the same holdout; {live} "
                "keeps serving"
            )
            return refused
        if new < floor:
            refused["reason"] = (
                f"{metric} {new:.4f} < {floor:.4f} = (1 - {config.gate_margin:g}) x the published {live}'s "
                f"{incumbent[metric]:.4f} on the same holdout; {live} keeps serving"
            )
            return refused
        if users < config.min_holdout_users:
            # not enough evidence to replace a model that serves: keeping it is the safe side
            refused["reason"] = (
                f"{metric} {new:.4f} against the published {live}'s {incumbent[metric]:.4f}, on a holdout of "
                f"{users} users (< min_holdout_users {config.min_holdout_users}): too few to replace it on; "
                f"{live} keeps serving"
            )
            return refused
    version = publish.new_version_name(candidate["content_version"])
    staging = folder / publish.VERSIONS / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(export_dir, staging, copy_function=_link_or_copy)
    release = {
        "version": version,
        "catalogue": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": code_version(),
        "inputs": {
            "events": config.events,
            "events_digest": digest,
            "since": since,
            "until": until,
            "partition_column": partition_column,
        },
        "data": _counts(data) | {"items": data.n_items},
        "config": config.as_dict(),
        "metrics": {
            "holdout": candidate["metrics"],  # of the chosen model before its refit on the holdout
            "popularity": popularity,
            "published_before": incumbent,
            "previous_version": live,
        },
        # what was chosen among, on validation, and whether what is published was then refit on the whole
        # window (holdout included)
        "choice": {
            "variant": choice["variant"],
            "refit": choice["refit"],
            "candidates": [{k: v for k, v in c.items() if k != "refit_params"} for c in choice["candidates"]],
        },
        "content_version": candidate["content_version"],
        "checksums": {k: v["sha256"] for k, v in read_manifest(export_dir)["arrays"].items()},
        "stages": stages,
    }
    write_json(staging / publish.RELEASE, release)
    publish.add_version(folder, staging, version)
    publish.switch(folder, version, {"action": "publish", "metric": metric, "value": new})
    removed = publish.prune(folder, config.keep)
    if incumbent is None:
        reason = f"first version ({metric} {new:.4f}{f' on {users} holdout users' if warnings else ''})"
    else:
        reason = f"{metric} {new:.4f} against the published {live}'s {incumbent[metric]:.4f}"
    out = {"decision": "published", "reason": reason, "version": version, "published": incumbent}
    return out | {"popularity": popularity, "pruned": removed, "warnings": warnings}


def _popularity(data: PreparedData, name: str) -> ServingModel:
    """Popularity as a serving model (no vector, the bias: log of the training window's counts of each
    item as a target), the baseline the gate reports beside the models."""
    counts = np.asarray(data.targets.get("fit_test", data.fit_test).sum(axis=0)).ravel()
    n = len(counts)
    return ServingModel(
        item_ids=np.asarray(data.items.ids).astype(str),
        encoder_vectors=np.zeros((n, 1), np.float32),
        item_vectors=np.zeros((n, 1), np.float32),
        item_bias=np.log1p(counts).astype(np.float32),
        query_map=np.eye(1, dtype=np.float32),
        partitions={name: np.arange(n)},
    )


# ------------------------------------------------------------------------------------------ holdout
def _holdout(model: ServingModel, data: PreparedData, config: PipelineConfig, name: str) -> dict[str, float]:
    """The gate's measure: the same users, targets and scoring for the new model and the published one."""
    return holdout_metrics(model, data.test, data.items.ids, config.k, name, config.holdout_users, config.seed)


def holdout_metrics(
    model: ServingModel,
    holdout: EvalSet,
    item_ids: np.ndarray,
    k: int,
    partition: str,
    max_users: int,
    seed: int = 0,
) -> dict[str, float]:
    """Recall@k and NDCG@k of a serving model on a holdout given in another item vocabulary
    (``item_ids``: the holdout's columns), by exact scoring (:meth:`ServingModel.top_k`). Items the model
    does not know are ignored in the input and missed as targets, so models of different days are
    compared on the same users and the same targets. Recall@k = hits / |targets|."""
    rows = np.arange(holdout.n_users)
    if len(rows) > max_users:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_users, replace=False))
    columns = model.indices(item_ids)  # holdout column → model item, -1 unknown
    n_items = len(model.item_ids)

    def to_model(m: sp.csr_matrix) -> sp.csr_matrix:
        m = sp.coo_matrix(m[rows])
        mapped = columns[m.col]
        keep = mapped >= 0
        shape = (len(rows), n_items)
        return sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (m.row[keep], mapped[keep])), shape=shape)

    top, _ = model.top_k(to_model(holdout.input), k, partition, exclude=to_model(holdout.excluded))
    targets = to_model(holdout.target)
    n_targets = np.diff(holdout.target[rows].indptr)  # unknown targets count: a model that lacks them misses
    wanted = np.repeat(np.arange(len(rows)), np.diff(targets.indptr)) * n_items + targets.indices
    found = np.where(top >= 0, np.arange(len(rows))[:, None] * n_items + top, -1)
    hits = np.isin(found, wanted)
    return {
        f"recall@{k}": round(float(np.mean(recall_at_k(hits, n_targets, k, "target"))), 6),
        f"ndcg@{k}": round(float(np.mean(ndcg_at_k(hits, n_targets, k))), 6),
        "users": len(rows),
    }


# ------------------------------------------------------------------------------------------ helpers
def code_version() -> dict[str, str]:
    """ledrec's version and, in a git checkout, the commit (with "+dirty" when files differ from it)."""
    out = {"ledrec": __version__}
    here = Path(__file__).resolve().parent
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if commit:
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            out["git"] = commit + ("+dirty" if dirty else "")
    return out


def _key(*parts: Any) -> str:
    """16 hex digits over a stage's inputs and the code that computes it."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _digest(directory: Path) -> str:
    """A stage output's content: its manifest's checksums (the arrays are verified when loaded)."""
    manifest = read_manifest(directory)
    return _key({k: v.get("sha256") for k, v in manifest["arrays"].items()}, manifest.get("config"))


@contextlib.contextmanager
def _stage(
    stages: dict[str, Any], name: str, path: Path, say: Callable[[str], None], marker: str = MANIFEST
) -> Iterator[dict[str, Any]]:
    record = stages.setdefault(name, {})
    record["cached"] = (path / marker).is_file()
    with measured(record):
        yield record
    say(f"{name}: {'reused ' + path.name if record['cached'] else 'done'} ({record['wall_s']:.1f} s)")


def _atomic_dir(path: Path, write: Callable[[Path], Any]) -> None:
    """Write a directory under a temporary name and rename it into place: a killed stage leaves nothing
    that looks finished."""
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    os.rename(tmp, path)


def _link_or_copy(src: str, dst: str) -> None:
    """Versions share the work folder's immutable files by hard link when they can (no second copy of a
    million-item export); a copy otherwise."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _clean(work: Path, keep: set[Path | None]) -> None:
    """Drop this catalogue's stage outputs of earlier inputs (the work folder must not grow every day)."""
    kept = {p.name for p in keep if p is not None}
    for path in work.iterdir():
        if path.name not in kept:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextlib.contextmanager
def _exclusive(lock: Path, out: str) -> Iterator[None]:
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another pipeline is running on it") from None
        yield


def _counts(data: PreparedData) -> dict[str, int]:
    return {
        "train_users": int(data.fit_test.shape[0]),
        "train_interactions": int(data.fit_test.nnz),
        "holdout_users": int(data.test.n_users),
        "holdout_targets": int(data.test.target.nnz),
    }


def _day(seconds: int | None) -> str:
    return "start" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"pipeline: {text}", file=sys.stderr, flush=True)
