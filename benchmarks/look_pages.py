"""How fast each page of ``ledrec look`` answers on ML-1M-sized data (docs/look.md): the BARS ML-1M split
(6,022 users, 3,043 items with events) as an event table, LED fitted on it and exported, ``ledrec look``
started as a user starts it, every page asked over HTTP (loopback) a few times; with ``--root``, also the daily
job's page of a published root. Prints one JSON object.

    python benchmarks/look_pages.py --data ../shared/data/ml-1m-implicit-lcfn --work runs/look/ml1m \
        --root runs/look/published

The BARS files have no titles: a synthetic item table (title "Film N", one of 18 genres) stands in for
``movies.dat``, so search, titles and the map's colours cost what they would with real ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def prepare(data: Path, work: Path) -> tuple[Path, Path, Path]:
    """The event table (user, item, timestamp = position in the user's line), the item table, and an export
    of LED fitted on the events (skipped when already there)."""
    import ledrec

    work.mkdir(parents=True, exist_ok=True)
    events, items, export = work / "events.csv", work / "items.csv", work / "export"
    if not events.exists():
        users, found, order = [], [], []
        for line in (data / "train.txt").read_text().splitlines():
            fields = line.split()
            users += [fields[0]] * (len(fields) - 1)
            found += fields[1:]
            order += range(len(fields) - 1)
        pacsv.write_csv(pa.table({"user": users, "item": found, "timestamp": order}), events)
    if not items.exists():
        ids = np.unique(read(events)["item"].to_numpy(zero_copy_only=False))
        rng = np.random.default_rng(0)
        genres = ["|".join(rng.choice(GENRES, size=rng.integers(1, 4), replace=False)) for _ in ids]
        titles = [f"Film {i} ({1950 + int(i) % 50})" for i in ids]
        pacsv.write_csv(pa.table({"item": ids, "title": titles, "genres": genres}), items)
    if not export.exists():
        data_ = ledrec.Interactions.from_events(read(events))
        model = ledrec.LED().fit(data_)
        ledrec.from_model(model, model.item_ids).save(export)
    return events, items, export


def read(events: Path) -> pa.Table:
    strings = {"user": pa.string(), "item": pa.string()}
    return pacsv.read_csv(events, convert_options=pacsv.ConvertOptions(column_types=strings))


def get(url: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read().decode()
        assert response.status == 200, url
    return time.perf_counter() - t0, body


def measure(base: str, pages: dict[str, str], repeat: int) -> dict[str, Any]:
    out = {}
    for name, path in pages.items():
        times = [get(base + path)[0] for _ in range(repeat)]
        out[name] = {"first_ms": round(1000 * times[0], 1), "median_ms": round(1000 * statistics.median(times), 1)}
        out[name]["max_ms"] = round(1000 * max(times), 1)
    return out


def main() -> None:
    from ledrec.look.process import start_look, stop_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ml-1m-implicit-lcfn")
    parser.add_argument("--work", default="runs/look/ml1m")
    parser.add_argument("--root", default=None, help="a published root: also time the daily job's page")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events, items, export = prepare(Path(args.data), Path(args.work))
    result: dict[str, Any] = {"data": args.data}
    t0 = time.perf_counter()
    proc, ready = start_look(export, "--items", str(items), "--events", str(events), stderr=None)
    try:
        result["start_s"] = round(time.perf_counter() - t0, 2)
        result["ready"] = ready
        base = ready["url"].rstrip("/")
        # the map: t-SNE of 3,000 items runs in a child process from the ready line on; wait for it
        t1 = time.perf_counter()
        while "t-SNE of" not in get(base + "/map")[1]:
            time.sleep(0.5)
        result["tsne_ready_after_s"] = round(time.perf_counter() - t1, 1)
        counts = read(events)
        users, lengths = np.unique(counts["user"].to_numpy(zero_copy_only=False), return_counts=True)
        heavy = str(users[np.argmax(lengths)])
        typical = str(users[np.argsort(lengths)[len(lengths) // 2]])
        items_, item_counts = np.unique(counts["item"].to_numpy(zero_copy_only=False), return_counts=True)
        top = [str(i) for i in items_[np.argsort(-item_counts, kind="stable")[:3]]]
        pages = {
            "figure8, a typical user": f"/?user={typical}",
            f"figure8, the longest history ({int(lengths.max())} items)": f"/?user={heavy}",
            "figure8, 3 typed items + search": "/?" + "&".join(f"h={i}" for i in top) + "&q=film+19",
            "item: neighbours and histories": f"/item?id={top[0]}",
            "map (t-SNE, 3,000 items)": "/map",
            "map with a user's history and top 10": f"/map?user={typical}",
        }
        result["pages"] = measure(base, pages, args.repeat)
    finally:
        stop_server(proc)
    if args.root:
        proc, ready = start_look(args.root, "--map", "pca", stderr=None)
        try:
            base = ready["url"].rstrip("/")
            catalogue = next(iter(ready["catalogues"]))
            result["pipeline"] = measure(
                base,
                {"daily job": "/pipeline", "one catalogue's plot (SVG)": f"/pipeline/{catalogue}.svg"},
                args.repeat,
            )
        finally:
            stop_server(proc)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
