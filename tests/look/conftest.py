"""A tiny world to look at: 60 films of four genres with titles, two catalogues (fr: films 0-39, de: 20-59),
120 users who each watch films of one genre, a model whose item vectors are the genres (so the nearest items
of a film are its genre's), and a published root with two versions per catalogue, a refused run and a
rollback — written in a second, so the page tests take seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from ledrec.export import publish
from ledrec.export.mips import ServingModel

GENRES = ("Action", "Animation", "Drama", "Comedy")
N_ITEMS = 60
NAMED = {  # a few films a test can search for by title
    0: "Die Hard (1988)",
    4: "Alien (1979)",
    8: "Star Wars (1977)",
    21: "Toy Story (1995)",
    25: "Aladdin (1992)",
    42: "Casablanca (1942)",
}
CATALOGUES = {"fr": np.arange(0, 40), "de": np.arange(20, 60)}


def genre(item: int) -> int:
    return item % 4 if item not in NAMED else {0: 0, 4: 0, 8: 0, 21: 1, 25: 1, 42: 2}[item]


def title(item: int) -> str:
    return NAMED.get(item, f"{GENRES[genre(item)]} film {item} ({1980 + item % 30})")


def toy_model() -> ServingModel:
    rng = np.random.default_rng(0)
    vectors = np.zeros((N_ITEMS, 8), np.float32)
    for i in range(N_ITEMS):
        vectors[i, genre(i)] = 1.0
    vectors += rng.normal(scale=0.15, size=vectors.shape).astype(np.float32)
    bias = np.linspace(1.0, 0.0, N_ITEMS).astype(np.float32)
    return ServingModel(
        item_ids=np.array([f"m{i}" for i in range(N_ITEMS)]),
        encoder_vectors=vectors,
        item_vectors=vectors,
        item_bias=bias,
        query_map=np.eye(8, dtype=np.float32),
        partitions={name: items.astype(np.int64) for name, items in CATALOGUES.items()},
    )


def write_items(path: Path, images: bool = False) -> Path:
    columns = {
        "movieId": [f"m{i}" for i in range(N_ITEMS)],
        "title": [title(i) for i in range(N_ITEMS)],
        "genres": [f"{GENRES[genre(i)]}|Thriller" if genre(i) == 0 else GENRES[genre(i)] for i in range(N_ITEMS)],
    }
    if images:
        columns["image"] = [f"/static/img/{i}.jpg" if i != 4 else "javascript:alert(1)" for i in range(N_ITEMS)]
    pacsv.write_csv(pa.table(columns), path)
    return path


def write_events(path: Path, partition: bool = True) -> Path:
    """120 users, 60 per catalogue; user u watches 6 films of genre u % 4 in that catalogue, in time order."""
    rng = np.random.default_rng(1)
    rows: dict[str, list] = {"user": [], "item": [], "timestamp": [], "country": []}
    for u in range(120):
        name = "fr" if u < 60 else "de"
        mine = [i for i in CATALOGUES[name] if genre(int(i)) == u % 4]
        # popular films (low ids) more often: GBO has an order to find
        weights = 1.0 / (1.0 + np.arange(len(mine)))
        chosen = rng.choice(mine, size=6, replace=False, p=weights / weights.sum())
        for t, item in enumerate(chosen):
            rows["user"].append(f"u{u}")
            rows["item"].append(f"m{item}")
            rows["timestamp"].append(1_600_000_000 + 1000 * u + t)
            rows["country"].append(name)
    table = pa.table(rows)
    if not partition:
        table = table.drop_columns(["country"])
    pacsv.write_csv(table, path)
    return path


def write_published(root: Path) -> Path:
    """A published root: fr and de with two versions each (recall .20 then .25), a refused run, and de rolled
    back to its first version; run reports under reports/ as the daily job writes them."""
    model = toy_model()
    decisions = {"fr": [], "de": []}
    for name, items in CATALOGUES.items():
        folder = publish.register(root, name)
        for step, recall in enumerate((0.20, 0.25)):
            one = ServingModel(
                model.item_ids,
                model.encoder_vectors,
                model.item_vectors,
                model.item_bias + np.float32(step * 1e-3),  # another content: another version
                model.query_map,
                partitions={name: items.astype(np.int64)},
            )
            version = publish.new_version_name(one.version, now=1_700_000_000 + 86_400 * step)
            staged = root / f".staged-{name}-{step}"
            one.save(staged)
            (staged / publish.RELEASE).write_text(
                json.dumps(
                    {
                        "version": version,
                        "catalogue": name,
                        "created": f"2023-11-{14 + step:02d}T22:13:20Z",
                        "metrics": {
                            "holdout": {"recall@20": recall, "ndcg@20": recall / 2, "users": 150},
                            "popularity": {"recall@20": 0.1, "ndcg@20": 0.05, "users": 150},
                            "published_before": None if step == 0 else {"recall@20": 0.2},
                            "previous_version": None,
                        },
                        "choice": {"variant": "spectral"},
                    }
                )
            )
            publish.add_version(folder, staged, version)
            publish.switch(folder, version, {"action": "publish", "metric": "recall@20", "value": recall})
            decisions[name].append({"decision": "published", "reason": f"recall@20 {recall}", "version": version})
        decisions[name].append(
            {"decision": "refused", "reason": "recall@20 0.1000 < 0.2375", "candidate": {"recall@20": 0.1}}
        )
    publish.rollback(root / "de")
    for run in range(3):
        report = {"catalogues": {n: decisions[n][run] | {"warnings": []} for n in decisions}}
        (root / "reports").mkdir(exist_ok=True)
        (root / "reports" / f"2023111{4 + run}T221320Z.json").write_text(json.dumps(report))
    return root


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths: ``root`` (published), ``export`` (one serving export of both catalogues), ``items``,
    ``images`` (items with an image column), ``events``, ``events_one`` (no partition column)."""
    base = tmp_path_factory.mktemp("look")
    export = base / "export"
    toy_model().save(export)
    return {
        "root": write_published(base / "root"),
        "export": export,
        "items": write_items(base / "items.csv"),
        "images": write_items(base / "items-images.csv", images=True),
        "events": write_events(base / "events.csv"),
        "events_one": write_events(base / "events-one.csv", partition=False),
    }
