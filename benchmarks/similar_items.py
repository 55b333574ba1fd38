"""Which item-item similarity should ``similar_items`` answer with? Candidates from one fitted LED (its
decoder or encoder vectors by cosine, the one-item-history score with and without the bias, the query
vector against the decoder by cosine, the score profile, and the closed form's own table: the rows of V Σ² of
its graph's SVD), the PMI + SVD pre-training vectors, ALS's item factors, and item-kNN
cosine on the training matrix (the classic baseline), each checked two ways:

* **held-out association** (any dataset): users split 80 / 20 (seeded); everything is fitted on the 80%.
  For each item i with at least 5 held-out users, the cosine of i and each of its 10 neighbours over the
  held-out users' columns (how much more than their popularities says the two are seen together by people
  the model never saw), averaged over (item, neighbour) pairs. The popularity list (the 10 most popular
  items but i) is the floor. (Counting how many of i's neighbours a held-out user also has rewards
  popularity above all: the popularity list wins that count on ml-latest-small, .35 against item-kNN's .20.)
* **genre agreement** (MovieLens with ``movies.csv``): mean Jaccard of the genre sets of an item and each of
  its 10 neighbours, over items with at least 10 training users.

and the neighbours of a few well-known films printed by title, to look at.

Usage: .venv/bin/python benchmarks/similar_items.py [--dataset ml-latest-small|ml-1m|gowalla] [--out F.json]
Prints one JSON object; progress on stderr. Reads ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
K = 10
LOOK = ("Toy Story (1995)", "Matrix, The (1999)", "Star Wars: Episode IV - A New Hope (1977)", "Heat (1995)")


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load(dataset: str) -> tuple[sp.csr_matrix, np.ndarray, dict[str, tuple[str, set[str]]]]:
    """The user × item 0/1 matrix, the item ids, and {id: (title, genres)} where known."""
    import pyarrow.csv as pcsv

    import ledrec

    if dataset == "ml-latest-small":
        folder = SHARED / "ml-latest-small"
        data = ledrec.Interactions.from_events(pcsv.read_csv(folder / "ratings.csv"), min_rating=3.5)
        movies = pcsv.read_csv(folder / "movies.csv").to_pydict()
        meta = {
            str(i): (t, set(g.split("|")) - {"(no genres listed)"})
            for i, t, g in zip(movies["movieId"], movies["title"], movies["genres"], strict=True)
        }
        return data.to_csr(), data.items.ids.astype(str), meta
    files = {"ml-1m": SHARED / "ml-1m-implicit-lcfn/train.txt", "gowalla": SHARED / "gowalla-lightgcn/train.txt"}
    rows, cols = [], []
    for user, line in enumerate(files[dataset].read_text().splitlines()):
        items = [int(x) for x in line.split()[1:]]
        rows += [user] * len(items)
        cols += items
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))
    X.data[:] = 1.0
    return X, np.arange(X.shape[1]).astype(str), {}


def cosine(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def neighbours_from(left: np.ndarray, right: np.ndarray, bias: np.ndarray | None, items: np.ndarray) -> np.ndarray:
    """Top-K of left[i] · right[j] (+ bias[j]) over j ≠ i, for each i of ``items``: (n, K)."""
    out = np.empty((len(items), K), dtype=np.int64)
    for lo in range(0, len(items), 2048):
        chunk = items[lo : lo + 2048]
        s = left[chunk] @ right.T
        if bias is not None:
            s = s + bias
        s[np.arange(len(chunk)), chunk] = -np.inf
        top = np.argpartition(-s, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        out[lo : lo + 2048] = np.take_along_axis(top, order, axis=1)
    return out


def profile(E: np.ndarray, Q: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Rows W_i with ⟨W_i, W_j⟩ = ⟨S_i, S_j⟩ for the one-item score rows S_i = E_i Q Vᵀ, normalised:
    W = E Q (VᵀV)^½ — two items are alike when the model, shown either, scores every item alike."""
    w, U = np.linalg.eigh(V.T.astype(np.float64) @ V)
    root = (U * np.sqrt(np.maximum(w, 0.0))) @ U.T
    return cosine((E @ Q).astype(np.float64) @ root)


def knn_neighbours(X: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Item-kNN cosine on the columns of X."""
    Xc = X.T.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(Xc.multiply(Xc).sum(axis=1)).ravel())
    Xn = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ Xc
    out = np.empty((len(items), K), dtype=np.int64)
    for lo in range(0, len(items), 2048):
        chunk = items[lo : lo + 2048]
        s = np.asarray((Xn[chunk] @ Xn.T).todense())
        s[np.arange(len(chunk)), chunk] = -np.inf
        s[:, norms == 0] = -np.inf
        top = np.argpartition(-s, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        out[lo : lo + 2048] = np.take_along_axis(top, order, axis=1)
    return out


def association_check(neighbours: np.ndarray, H: sp.csr_matrix) -> float:
    """Mean held-out cosine of (i, neighbour) over items with >= 5 held-out users."""
    Hc = H.T.tocsr().astype(np.float64)
    counts = np.diff(Hc.indptr)
    items = np.flatnonzero(counts >= 5)
    norms = np.sqrt(np.maximum(counts, 1))
    values = []
    for lo in range(0, len(items), 1024):
        chunk = items[lo : lo + 1024]
        together = Hc[chunk] @ Hc.T  # (n, I) held-out users in common
        nb = neighbours[chunk]
        common = np.asarray(together[np.arange(len(chunk))[:, None], nb].todense())
        values.append(common / (norms[chunk][:, None] * norms[nb]))
    return float(np.concatenate(values).mean())


def genre_check(neighbours: np.ndarray, ids: np.ndarray, meta: dict, items: np.ndarray) -> float:
    scores = []
    for i in items:
        mine = meta.get(ids[i], ("", set()))[1]
        if not mine:
            continue
        for j in neighbours[i]:
            other = meta.get(ids[j], ("", set()))[1]
            scores.append(len(mine & other) / len(mine | other) if other else 0.0)
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-latest-small", choices=("ml-latest-small", "ml-1m", "gowalla"))
    parser.add_argument("--variants", default="default,project", help="LED variants to fit ('default': LED())")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    from ledrec.models.als import ALS
    from ledrec.models.led import LED
    from ledrec.pretrain import PretrainConfig, pretrain

    X, ids, meta = load(args.dataset)
    rng = np.random.default_rng(args.seed)
    held = rng.random(X.shape[0]) < 0.2
    train, H = X[~held], X[held]
    counts = np.asarray(train.sum(axis=0)).ravel()
    every = np.arange(X.shape[1])
    log(f"{args.dataset}: {X.shape[0]} users × {X.shape[1]} items; {H.shape[0]} held-out users")

    candidates: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}

    def add(name: str, make) -> None:
        t0 = time.perf_counter()
        candidates[name] = make()
        timings[name] = round(time.perf_counter() - t0, 2)
        log(f"  {name}: {timings[name]} s")

    popular = np.argsort(-counts, kind="stable")[: K + 1]
    add("popularity (floor)", lambda: np.array([[j for j in popular if j != i][:K] for i in every]))
    add("item-kNN cosine", lambda: knn_neighbours(train, every))
    for variant in args.variants.split(","):
        model = LED(random_state=args.seed) if variant == "default" else LED(variant=variant, random_state=args.seed)
        t0 = time.perf_counter()
        model.fit(train)
        tag = f"LED {model.variant_}" + (" (default)" if variant == "default" else "")
        log(f"{tag}: fitted in {time.perf_counter() - t0:.1f} s")
        E, V, Q, b = model._encoder_vectors(), model.item_vectors_, model.query_map_, model.item_bias_
        add(f"{tag}: one-item-history score", lambda E=E, Q=Q, V=V, b=b: neighbours_from(E @ Q, V, b, every))
        add(f"{tag}: one-item score, no bias", lambda E=E, Q=Q, V=V: neighbours_from(E @ Q, V, None, every))
        add(f"{tag}: decoder cosine", lambda V=V: neighbours_from(cosine(V), cosine(V), None, every))
        if E is not V:
            add(f"{tag}: encoder cosine", lambda E=E: neighbours_from(cosine(E), cosine(E), None, every))
        add(f"{tag}: score-profile cosine", lambda E=E, Q=Q, V=V: neighbours_from(*[profile(E, Q, V)] * 2, None, every))
        add(
            f"{tag}: query·decoder cosine", lambda E=E, Q=Q, V=V: neighbours_from(cosine(E @ Q), cosine(V), None, every)
        )
        if getattr(model, "similarity_table_", None) is not None:  # the closed form: its graph's V Σ² rows
            W = model.similarity_vectors()
            add(f"{tag}: graph co-occurrence profile (VΣ²)", lambda W=W: neighbours_from(W, W, None, every))
    emb = pretrain(train, PretrainConfig(dim=128, seed=args.seed))
    add("PMI-SVD cosine (d 128)", lambda: neighbours_from(cosine(emb.vectors), cosine(emb.vectors), None, every))
    als = ALS(random_state=args.seed).fit(train)
    add(
        "ALS factors cosine", lambda: neighbours_from(cosine(als.item_factors_), cosine(als.item_factors_), None, every)
    )

    frequent = np.flatnonzero(counts >= 10)
    rows = []
    for name, nb in candidates.items():
        row = {"similarity": name, "heldout_cosine@10": round(association_check(nb, H), 4)}
        if meta:
            row["genre_jaccard@10"] = round(genre_check(nb, ids, meta, frequent), 4)
        row["seconds"] = timings[name]
        rows.append(row)
        log(json.dumps(row))
    looks = {}
    if meta:
        by_title = {t: k for k, i in enumerate(ids) for t in [meta.get(i, ("",))[0]]}
        for title in LOOK:
            if title in by_title:
                i = by_title[title]
                looks[title] = {name: [meta[ids[j]][0] for j in nb[i][:5]] for name, nb in candidates.items()}
    result = {"dataset": args.dataset, "k": K, "seed": args.seed, "rows": rows, "look": looks}
    text = json.dumps(result, indent=1, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
