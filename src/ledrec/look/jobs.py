"""The daily job at a glance: what a published root (``ledrec pipeline --out ROOT``, docs/pipeline.md) says
about each catalogue — its versions with their holdout metrics, every switch of ``current`` (publish,
rollback), every gate decision (published, refused, unchanged) — read from the files the job writes and
drawn as matplotlib SVG.

Three sources, each for what only it holds: ``versions/<V>/release.json`` (the kept versions: metrics of
the model, of popularity and of the model it replaced on the same holdout, the variant chosen),
``releases.jsonl`` (every switch, also of versions pruned since, with the gate's metric) and
``reports/<stamp>.json`` (every run, with the decisions that published nothing: a refused model leaves no
version behind).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ledrec.export import publish

log = logging.getLogger(__name__)

DECISION_STYLE = {  # decision → (marker, colour) on the plot
    "published": ("o", "#2ca02c"),
    "refused": ("X", "#d62728"),
    "unchanged": ("s", "#7f7f7f"),
}


def parse_time(text: Any) -> dt.datetime | None:
    """A release's ISO time or a report's stamp (20261207T002153Z), as UTC; None when it is neither."""
    if not isinstance(text, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H%M%SZ"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None (logged) for a file cut short or not JSON: one bad file must not hide the rest."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("%s: unreadable (%s)", path, exc)
        return None
    return value if isinstance(value, dict) else None


def daily_job(root: str | Path) -> dict[str, Any]:
    """Per catalogue: ``current``, ``versions`` (kept, newest last, each with its release metrics),
    ``switches`` (releases.jsonl) and ``decisions`` (from the run reports), plus the reports' run times."""
    root = Path(root)
    reports = []
    for path in sorted((root / "reports").glob("*.json")):
        report = _read_json(path)
        if report is not None:
            reports.append((path.stem, report))
    out: dict[str, Any] = {"root": str(root), "runs": len(reports), "catalogues": {}}
    for name, folder in sorted(publish.catalogues(root, "ledrec look").items()):
        live = publish.current(folder)
        versions = []
        for version in publish.versions(folder):
            release = _read_json(folder / publish.VERSIONS / version / publish.RELEASE) or {}
            metrics = release.get("metrics") or {}
            versions.append(
                {
                    "version": version,
                    "created": release.get("created"),
                    "current": version == live,
                    "variant": (release.get("choice") or {}).get("variant"),
                    "holdout": metrics.get("holdout") or {},
                    "popularity": metrics.get("popularity") or {},
                    "replaced": metrics.get("previous_version"),
                    "replaced_metrics": metrics.get("published_before") or {},
                    "data": release.get("data") or {},
                }
            )
        decisions = []
        for stamp, report in reports:
            part = (report.get("catalogues") or {}).get(name)
            if isinstance(part, dict) and "decision" in part:
                candidate = part.get("candidate") or {}
                decisions.append(
                    {
                        "time": parse_time(stamp),
                        "decision": part["decision"],
                        "reason": part.get("reason", ""),
                        "version": part.get("version"),
                        "candidate": candidate,
                        "variant": part.get("variant"),
                    }
                )
        switches = []
        for record in publish.releases(folder):
            switches.append(record | {"when": parse_time(record.get("time"))})
        out["catalogues"][name] = {
            "current": live,
            "versions": versions,
            "switches": switches,
            "decisions": decisions,
            "metric": _metric(switches, versions),
        }
    return out


def _metric(switches: list[dict[str, Any]], versions: list[dict[str, Any]]) -> str:
    """The gate's metric (recall@k): as the switches name it, else the first recall of a release."""
    for record in switches:
        if isinstance(record.get("metric"), str):
            return record["metric"]
    for version in versions:
        for key in version["holdout"]:
            if key.startswith("recall@"):
                return key
    return "recall@20"


def plot_catalogue(name: str, job: dict[str, Any], width: float = 7.5, height: float = 3.2) -> str:
    """One catalogue's history as an SVG document: the gate's metric on the holdout of each published
    version (a line over time), popularity's on the same holdouts (dashed: the floor), every run's gate
    decision (a marker per decision), rollbacks (vertical lines). matplotlib's object interface, no pyplot:
    no global backend, no figure registry, safe in the server's threads. (matplotlib is imported with this
    module: its first import takes half a second, which belongs to the start, not to a page.)"""
    metric = job["metric"]
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    published = [(s["when"], s.get("value")) for s in job["switches"] if s.get("action") == "publish"]
    published = [(t, v) for t, v in published if t is not None and isinstance(v, int | float)]
    if published:
        ax.plot(*zip(*published, strict=True), "-", color="#1f77b4", lw=1.5, label=f"published: holdout {metric}")
    floor = [(parse_time(v["created"]), v["popularity"].get(metric)) for v in job["versions"]]
    floor = [(t, v) for t, v in floor if t is not None and isinstance(v, int | float)]
    if floor:
        ax.plot(*zip(*floor, strict=True), "--", color="#9467bd", lw=1, label="popularity, same holdout")
    for decision, (marker, colour) in DECISION_STYLE.items():
        chosen = [d for d in job["decisions"] if d["decision"] == decision and d["time"] is not None]
        points = [(d["time"], d["candidate"][metric]) for d in chosen if isinstance(d["candidate"].get(metric), float)]
        if points:
            ax.plot(*zip(*points, strict=True), marker, color=colour, ms=7, ls="none", label=f"gate: {decision}")
    rollbacks = [s["when"] for s in job["switches"] if s.get("action") == "rollback" and s["when"] is not None]
    for k, when in enumerate(rollbacks):
        ax.axvline(when, color="#ff7f0e", ls=":", lw=1.5, label="rollback" if k == 0 else None)
    ax.set_title(f"{name}: the daily job's gate on the holdout", fontsize=10)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend(fontsize=7, loc="best")
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no published version yet", ha="center", va="center", transform=ax.transAxes)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
