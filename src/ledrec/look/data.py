"""What the pages of ``ledrec look`` show, computed in plain Python and numpy so that it is tested without a
browser (tests/look/test_data.py) and the web layer (:mod:`ledrec.look.app`) only renders.

Loaded once at startup (:class:`Look`): each catalogue's model as the service would answer it (the same
loader as ``ledrec recommend``: :func:`ledrec.serve.batch.retrievers_of`, which knows a run directory, a
serving export and a published root, validates and self-checks), the item table (titles, categories,
images: :func:`ledrec.data.items.read_items`) and, with an event table, each user's history, every item's
popularity and the paper's two baselines fitted on it (GBO and CBO, :mod:`ledrec.twostage.candidates`).
After that a page is a few lookups and one matrix-vector product: the 1 s budget of each page is spent on
rendering, not on loading.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from ledrec.data.interactions import DataError
from ledrec.data.items import ItemTable, read_items
from ledrec.data.stream import EventSource
from ledrec.export import publish
from ledrec.serve.batch import retrievers_of
from ledrec.serve.retriever import Retriever, RetrieverConfig
from ledrec.twostage.candidates import CBO, GBO

log = logging.getLogger(__name__)

K_MAX = 100  # the most recommendations a page asks each source for
MAX_HISTORY = 500  # ids a typed history may hold (they travel in the query string)
SOURCES = ("gbo", "cbo", "led")
SOURCE_NAMES = {
    "gbo": "GBO (global best-of: the catalogue's most popular)",
    "cbo": "CBO (best-of within the user's cluster)",
    "led": "LED",
}
CBO_CLUSTERS = 30  # the paper's production baseline clusters users; 30 is twostage's default


class LookError(ValueError):
    """A request the page must refuse: ``status`` 400 (a bad parameter) or 404 (no such thing)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Shown:
    """One item as a page shows it: what it is (title, first category, image), why it is there (score),
    and how common it is (popularity: its events in the event table; None without one)."""

    id: str
    title: str
    category: str | None = None
    image: str | None = None
    score: float | None = None
    popularity: int | None = None
    known: bool = True  # the catalogue's model knows the item
    in_history: bool = False


@dataclass
class Catalogue:
    """One catalogue (country, merchant) as the pages use it; item positions are *local*: indices into
    ``members`` (the model's item indices of this catalogue)."""

    name: str
    partition: str  # its name inside the model (the retriever's partition)
    retriever: Retriever
    members: np.ndarray  # (n,) model item indices, sorted
    local: np.ndarray  # (I_model,) model index → local position, -1 for another catalogue's item
    popularity: np.ndarray  # (n,) events of each item in the event table (zeros without one)
    users: np.ndarray | None = None  # (U,) user ids, sorted
    user_row: dict[str, int] = field(default_factory=dict)
    sequences: sp.csr_matrix | None = None  # (U, n): each user's distinct items in time order (indices order)
    by_item: sp.csc_matrix | None = None  # (U, n) the same, by item: who has an item
    gbo: GBO | None = None
    cbo: CBO | None = None
    search_weight: np.ndarray | None = None  # (item-table rows,) search order: this catalogue's, most popular first

    @property
    def model(self) -> Any:
        return self.retriever.model

    @property
    def has_events(self) -> bool:
        return self.users is not None


class Look:
    """Everything the pages need, loaded once (see the module's docstring).

    ``path``: a run directory, a serving export, a published version or a published root; ``items``: an
    item table (file or :class:`ItemTable`); ``events``: an event table (file or folder) whose users can be
    picked and which gives popularity, GBO and CBO; ``also``: more models to show beside LED (label → any
    directory ``path`` may be; answered as the service answers, by catalogue name). Raises
    :class:`DataError` / ``ArtifactError`` (one line) for what cannot be read."""

    def __init__(
        self,
        path: str | Path,
        items: str | Path | ItemTable | None = None,
        events: str | Path | None = None,
        *,
        map_items: int = 3000,
        map_method: str = "tsne",
        seed: int = 0,
        also: dict[str, str | Path] | None = None,
    ) -> None:
        start = time.perf_counter()
        also = dict(also or {})
        for label in also:
            if label in SOURCES or not label or len(label) > 40:
                raise DataError(f"--also {label}=…: name another model by a short label other than {SOURCES}")
        self.path = Path(path)
        # read and check the small inputs first: a typo in --items fails before any model is loaded
        self.metadata = items if isinstance(items, ItemTable) or items is None else read_items(items)
        source = open_events(events) if events is not None else None
        self.events_path = None if events is None else str(events)
        self.published = self.path if publish.is_published(self.path) else None
        # the service's own loader and checks; exact search: a page compares sources, so no graph's misses
        retrievers = retrievers_of(self.path, RetrieverConfig(exact_below=2**62))
        self.catalogues: dict[str, Catalogue] = {}
        for name, retriever in sorted(retrievers.items()):
            self.catalogues[name] = _catalogue(name, retriever)
        # the other models, each catalogue answered by the model's catalogue of that name (or its only one)
        self.also: dict[str, dict[str, tuple[Retriever, str]]] = {}
        for label, where in also.items():
            found = retrievers_of(where, RetrieverConfig(exact_below=2**62))
            self.also[label] = {}
            for name in self.catalogues:
                retriever = found.get(name) or (next(iter(found.values())) if len(found) == 1 else None)
                if retriever is not None:
                    partition = name if name in retriever.partitions else next(iter(retriever.partitions))
                    self.also[label][name] = (retriever, partition)
        if source is not None:
            for cat in self.catalogues.values():
                _add_events(cat, source, len(self.catalogues), seed)
        ids = np.unique(np.concatenate([c.model.item_ids[c.members] for c in self.catalogues.values()]))
        # without metadata the ids are the titles: every page still works, and says so
        self.items = self.metadata or ItemTable(ids, pa.table({}), "item ids (no --items)")
        for cat in self.catalogues.values():
            weight = np.full(len(self.items), -1.0)  # (other catalogues' items last: filtered out)
            rows = self.items.index_of(cat.model.item_ids[cat.members])
            weight[rows[rows >= 0]] = cat.popularity[rows >= 0]
            cat.search_weight = weight
        self.maps = MapCache(self, map_items, map_method, seed)
        self.load_s = time.perf_counter() - start

    # ------------------------------------------------------------------------------------------ lookups
    def catalogue(self, name: str | None) -> Catalogue:
        """The named catalogue; the first when ``name`` is empty; :class:`LookError` 404 for another."""
        if not name:
            return next(iter(self.catalogues.values()))
        if name not in self.catalogues:
            raise LookError(f"no catalogue {name[:64]!r}; this model has {', '.join(self.catalogues)[:200]}", 404)
        return self.catalogues[name]

    def shown(
        self,
        cat: Catalogue,
        model_items: np.ndarray,
        scores: np.ndarray | list[float] | None = None,
        history: set[int] | frozenset[int] = frozenset(),
    ) -> list[Shown]:
        """Model item indices (of ``cat``'s model) as page rows, with titles, categories, images, popularity."""
        ids = cat.model.item_ids[model_items].tolist() if len(model_items) else []
        titles = self.items.titles(ids)
        categories = self.items.category(ids) if ids else []
        images = self._images(ids)
        local = cat.local[model_items] if len(model_items) else np.empty(0, np.int64)
        rows = []
        for k, item in enumerate(ids):
            rows.append(
                Shown(
                    id=item,
                    title=titles[k],
                    category=categories[k],
                    image=images[k],
                    score=None if scores is None else float(scores[k]),
                    popularity=int(cat.popularity[local[k]]) if cat.has_events and local[k] >= 0 else None,
                    known=bool(local[k] >= 0),
                    in_history=int(model_items[k]) in history,
                )
            )
        return rows

    def shown_ids(self, cat: Catalogue, ids: list[str]) -> list[Shown]:
        """Item ids as rows, in order; ids the catalogue's model does not know are kept, marked unknown."""
        found = cat.model.indices(np.asarray(ids, dtype=str)) if ids else np.empty(0, np.int64)
        rows = []
        for item, index in zip(ids, found.tolist(), strict=True):
            if index >= 0 and cat.local[index] >= 0:
                rows += self.shown(cat, np.array([index]))
            else:
                row = self.items.row(item)
                rows.append(Shown(item, self.items.title(item), _first(row.get("category")), _image(row), known=False))
        return rows

    def _images(self, ids: list[str]) -> list[str | None]:
        if "image" not in self.items.roles or not ids:
            return [None] * len(ids)
        column = self.items.columns.column("image")
        rows = self.items.index_of(ids)
        values = column.take(pa.array(np.where(rows < 0, 0, rows))).to_pylist()
        return [_safe_url(v) if r >= 0 else None for v, r in zip(values, rows.tolist(), strict=True)]

    # ------------------------------------------------------------------------------------------ Figure 8
    def user_history(self, cat: Catalogue, user: str) -> np.ndarray:
        """The user's distinct items of the catalogue in time order (model indices); LookError 404 for a
        user the event table does not have in it."""
        if not cat.has_events:
            raise LookError("no event table: start ledrec look with --events to pick users", 400)
        row = cat.user_row.get(user)
        if row is None:
            raise LookError(f"no user {user[:64]!r} in catalogue {cat.name!r} of {self.events_path}", 404)
        seq = cat.sequences
        return cat.members[seq.indices[seq.indptr[row] : seq.indptr[row + 1]]]

    def history_items(self, cat: Catalogue, ids: list[str]) -> np.ndarray:
        """The model indices of the ids this catalogue knows, each once, in the order given."""
        if len(ids) > MAX_HISTORY:
            raise LookError(f"{len(ids)} history items; at most {MAX_HISTORY}")
        found = cat.model.indices(np.asarray(ids, dtype=str)) if ids else np.empty(0, np.int64)
        found = found[(found >= 0)]
        found = found[cat.local[found] >= 0]
        return np.asarray(list(dict.fromkeys(found.tolist())), dtype=np.int64)

    def recommend(self, cat: Catalogue, history: np.ndarray, k: int) -> dict[str, list[Shown] | None]:
        """Each source's top ``k`` for one history (model indices), the history excluded from all three (as
        the service excludes it from LED's): None for a source that needs the event table without one."""
        k = check_k(k)
        seen = set(history.tolist())
        local = cat.local[history]
        x = sp.csr_matrix((np.ones(len(local), np.float32), local, [0, len(local)]), shape=(1, len(cat.members)))
        out: dict[str, list[Shown] | None] = dict.fromkeys(SOURCES)
        if cat.gbo is not None and cat.cbo is not None:
            for name, source in (("gbo", cat.gbo), ("cbo", cat.cbo)):
                items, scores = source.propose(x, np.zeros(1, np.int64), min(k + len(seen), source.k_max))
                keep = (items[0] >= 0) & ~np.isin(items[0], local)
                chosen = items[0][keep][:k]
                out[name] = self.shown(cat, cat.members[chosen], scores[0][keep][:k], seen)
        # LED as the service answers it (the same retriever, the history excluded; cold start: top biases)
        model_x = sp.csr_matrix(
            (np.ones(len(history), np.float32), history, [0, len(history)]), shape=(1, len(cat.model.item_ids))
        )
        items, scores = cat.retriever.recommend_many(cat.partition, model_x, k, exclude_seen=True)
        keep = items[0] >= 0
        out["led"] = self.shown(cat, items[0][keep], scores[0][keep], seen)
        ids = cat.model.item_ids[history]
        for label, by_catalogue in self.also.items():  # the same history by id, each model its own answer
            if cat.name not in by_catalogue:
                out[label] = None
                continue
            retriever, partition = by_catalogue[cat.name]
            theirs = retriever.model.indices(ids)
            theirs = theirs[theirs >= 0]
            x = sp.csr_matrix(
                (np.ones(len(theirs), np.float32), theirs, [0, len(theirs)]),
                shape=(1, len(retriever.model.item_ids)),
            )
            items, scores = retriever.recommend_many(partition, x, k, exclude_seen=True)
            keep = items[0] >= 0
            rows = self.shown_ids(cat, retriever.model.item_ids[items[0][keep]].tolist())
            for row, score in zip(rows, scores[0][keep].tolist(), strict=True):
                row.score = float(score)
            out[label] = rows
        return out

    def search(self, cat: Catalogue, text: str, limit: int = 20) -> list[Shown]:
        """Items of the catalogue whose title holds every word of ``text``, most popular first."""
        if len(text) > 200:
            raise LookError("a search of more than 200 characters")
        ids = self.items.search(text, limit=limit * 5, popularity=cat.search_weight)
        rows = [r for r in self.shown_ids(cat, ids) if r.known]
        return rows[:limit]

    def random_user(self, cat: Catalogue, seed: int) -> str:
        if not cat.has_events:
            raise LookError("no event table: start ledrec look with --events to pick users", 400)
        return str(cat.users[np.random.default_rng(seed).integers(len(cat.users))])

    # ------------------------------------------------------------------------------------------ an item
    def item(self, cat: Catalogue, item_id: str, k: int = 20, users: int = 12) -> dict[str, Any]:
        """One item: its metadata, its ``k`` nearest items (the model's Similar answer), and up to ``users``
        users whose histories hold it (the shortest histories first; with the count of all)."""
        k = check_k(k)
        index = cat.model.indices(np.asarray([item_id], dtype=str))[0]
        if index < 0 or cat.local[index] < 0:
            raise LookError(f"no item {item_id[:64]!r} in catalogue {cat.name!r}", 404)
        shown = self.shown(cat, np.array([index]))[0]
        row = self.items.row(item_id)
        similar = cat.retriever.similar(cat.partition, item_id, k)
        neighbours = self.shown(cat, cat.model.indices(np.asarray(similar.item_ids, dtype=str)), similar.scores)
        holders: list[dict[str, Any]] = []
        n_holders = None
        if cat.has_events:
            col = cat.by_item
            j = int(cat.local[index])
            rows = col.indices[col.indptr[j] : col.indptr[j + 1]]
            n_holders = len(rows)
            lengths = np.diff(cat.sequences.indptr)
            # the shortest histories first: there the item is a large part of what the user did
            for r in rows[np.lexsort((rows, lengths[rows]))][:users]:
                seq = cat.sequences.indices[cat.sequences.indptr[r] : cat.sequences.indptr[r + 1]]
                titles = self.items.titles(cat.model.item_ids[cat.members[seq[:8]]].tolist())
                holders.append({"user": str(cat.users[r]), "length": len(seq), "titles": titles})
        return {
            "item": shown,
            "metadata": {key: value for key, value in row.items() if key != "id" and value is not None},
            "similar": neighbours,
            "holders": holders,
            "n_holders": n_holders,
        }


def check_k(k: Any) -> int:
    try:
        value = int(k)
    except (TypeError, ValueError):
        raise LookError(f"k must be a whole number, not {str(k)[:32]!r}") from None
    if not 1 <= value <= K_MAX:
        raise LookError(f"k must be in 1..{K_MAX}, not {value}")
    return value


def open_events(path: str | Path) -> EventSource:
    """The event table, with its time column when it has one (histories are then shown in time order)."""
    try:
        return EventSource.open(path, need_time=True)
    except DataError:
        return EventSource.open(path, need_time=False)  # (the real error, if any, comes from here)


def _catalogue(name: str, retriever: Retriever) -> Catalogue:
    partition = name if name in retriever.partitions else next(iter(retriever.partitions))
    members = retriever.partitions[partition]
    local = np.full(len(retriever.model.item_ids), -1, dtype=np.int64)
    local[members] = np.arange(len(members))
    return Catalogue(name, partition, retriever, members, local, np.zeros(len(members), np.int64))


def _add_events(cat: Catalogue, source: EventSource, n_catalogues: int, seed: int) -> None:
    """The catalogue's users, their histories (distinct known items in time order), item popularity, and
    GBO / CBO fitted on them."""
    if source.has_partition and (n_catalogues > 1 or cat.name in source.catalogues()):
        try:
            events = source.read(cat.name, columns=("user", "item", "timestamp"))
        except DataError:
            log.warning("catalogue %r: no events in %s", cat.name, source.path)
            return
    else:  # one catalogue and no partition to choose by: every event is of it
        whole = dataclasses.replace(source, columns={r: c for r, c in source.columns.items() if r != "partition"})
        events = whole.read("", columns=("user", "item", "timestamp"))
    columns = cat.model.indices(events.items.ids)  # event vocabulary → model index
    item = cat.local[np.where(columns >= 0, columns, 0)[events.item]]
    item = np.where(columns[events.item] >= 0, item, -1)
    keep = item >= 0
    user, item = events.user[keep], item[keep]
    order = np.lexsort((events.timestamp[keep],) if events.timestamp is not None else (np.arange(len(user)),))
    order = order[np.argsort(user[order], kind="stable")]  # by user, then time
    user, item = user[order], item[order]
    cat.popularity = np.bincount(item, minlength=len(cat.members)).astype(np.int64)
    # distinct (user, item), the first occurrence kept: the history in the order it was made
    first = np.unique(user.astype(np.int64) * len(cat.members) + item, return_index=True)[1]
    first.sort()
    user, item = user[first], item[first]
    present = np.unique(user)
    cat.users = events.users.ids[present]
    order_users = np.argsort(cat.users, kind="stable")
    cat.users = cat.users[order_users]
    row_of = np.full(events.n_users, -1, dtype=np.int64)
    row_of[present[order_users]] = np.arange(len(present))
    rows = row_of[user]
    by_row = np.argsort(rows, kind="stable")  # (stable: time order within a user is kept)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(present)))])
    cat.sequences = sp.csr_matrix(
        (np.ones(len(rows), np.float32), item[by_row], indptr), shape=(len(present), len(cat.members))
    )
    cat.by_item = cat.sequences.tocsc()
    cat.user_row = {u: k for k, u in enumerate(cat.users.tolist())}
    matrix = cat.sequences.copy()
    matrix.sort_indices()
    one = np.zeros(len(cat.members), dtype=np.int64)  # one catalogue: the sources' "merchant" is 0
    cat.gbo = GBO(one, 1, k_max=K_MAX + MAX_HISTORY).fit(matrix)
    # CBO clusters users on their mean item vector; the paper's uses pre-trained SVD vectors, a served model
    # has its encoder's, which play that part
    vectors = cat.model.encoder_vectors[cat.members]
    cbo = CBO(vectors, one, 1, n_clusters=CBO_CLUSTERS, k_max=K_MAX + MAX_HISTORY, random_state=seed)
    cat.cbo = cbo.fit(matrix) if len(present) >= 2 else None
    if cat.cbo is None:
        cat.gbo = None


def _first(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value).split("|")[0].strip() or None


def _image(row: dict[str, Any]) -> str | None:
    return _safe_url(row.get("image"))


def _safe_url(value: Any) -> str | None:
    """An image address a page may load: http(s) or a relative path; never ``javascript:`` or ``data:``."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text.split("/", 1)[0] else ""
    return text if scheme in ("", "http", "https") else None


# ---------------------------------------------------------------------------------------------- the map
@dataclass
class ItemMap:
    """A 2-D projection of a sample of one catalogue's items: local positions and their coordinates."""

    items: np.ndarray  # (m,) local positions
    xy: np.ndarray  # (m, 2)
    method: str  # "t-SNE" or "PCA"
    seconds: float


class MapCache:
    """Each catalogue's map, computed once per process: PCA at once (milliseconds), t-SNE in a background
    thread started at the first request (seconds: tests/look and docs/look.md measure it); a page asked
    before t-SNE is done shows PCA and says so."""

    def __init__(self, look: Look, n_items: int, method: str, seed: int) -> None:
        if method not in ("tsne", "pca"):
            raise LookError(f"map method must be tsne or pca, not {method!r}")
        self.look, self.n_items, self.method, self.seed = look, n_items, method, seed
        self.pca: dict[str, ItemMap] = {}
        self.tsne: dict[str, ItemMap] = {}
        self.running: dict[str, threading.Thread] = {}
        self.lock = threading.Lock()

    def sample(self, cat: Catalogue) -> np.ndarray:
        """The ``n_items`` most popular items (the highest biases without events), sorted."""
        weight = cat.popularity if cat.has_events else cat.model.item_bias[cat.members]
        order = np.lexsort((np.arange(len(weight)), -weight))
        vectors = cat.model.similarity[cat.members]
        order = order[vectors[order].any(axis=1)]  # an item never seen has no direction to place it by
        return np.sort(order[: self.n_items])

    def get(self, cat: Catalogue, wait: float = 0.0) -> ItemMap:
        """t-SNE when it is ready (waiting up to ``wait`` seconds), else PCA (t-SNE then starts)."""
        with self.lock:
            if cat.name not in self.pca:
                self.pca[cat.name] = self._pca(cat)
            if self.method == "tsne" and cat.name not in self.tsne and cat.name not in self.running:
                thread = threading.Thread(target=self._tsne, args=(cat,), daemon=True, name=f"tsne-{cat.name}")
                self.running[cat.name] = thread
                thread.start()
            thread = self.running.get(cat.name)
        if thread is not None and wait > 0:
            thread.join(wait)
        return self.tsne.get(cat.name) or self.pca[cat.name]

    def start(self) -> None:
        """Start every catalogue's t-SNE now, from a background thread (after the ready line: the map is then
        ready when asked, and the server answers meanwhile); nothing to do for PCA (milliseconds, on request)."""
        if self.method == "tsne":
            cats = list(self.look.catalogues.values())
            threading.Thread(target=lambda: [self.get(c) for c in cats], daemon=True, name="maps").start()

    def _pca(self, cat: Catalogue) -> ItemMap:
        t0 = time.perf_counter()
        items = self.sample(cat)
        x = cat.model.similarity[cat.members[items]].astype(np.float64)
        x = x - x.mean(axis=0)
        if len(items) >= 2:
            _, _, vt = np.linalg.svd(x, full_matrices=False)
            xy = x @ vt[:2].T
            xy = np.hstack([xy, np.zeros((len(items), 2 - xy.shape[1]))]) if xy.shape[1] < 2 else xy
        else:
            xy = np.zeros((len(items), 2))
        return ItemMap(items, xy, "PCA", time.perf_counter() - t0)

    def _tsne(self, cat: Catalogue) -> None:
        try:
            self.tsne[cat.name] = tsne_map(cat, self.sample(cat), self.seed)
            log.info("map of %r: t-SNE of %d items in %.1f s", cat.name, len(self.tsne[cat.name].items),
                     self.tsne[cat.name].seconds)  # fmt: skip
        except Exception:  # a failed t-SNE leaves the PCA map: the page still works, the log says why
            log.exception("t-SNE of catalogue %r failed; the map stays PCA", cat.name)
        finally:
            with self.lock:
                self.running.pop(cat.name, None)


def tsne_map(cat: Catalogue, items: np.ndarray, seed: int = 0, timeout: float = 1800.0) -> ItemMap:
    """t-SNE of the items' similarity vectors — the unit vectors whose cosine the item page ranks neighbours
    by, so what is near on the map is what the item page lists — computed in a child process
    (:mod:`ledrec.look.project` says why), the arrays passed as ``.npy`` files."""
    t0 = time.perf_counter()
    x = cat.model.similarity[cat.members[items]].astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="ledrec-look-") as tmp:
        source, target = Path(tmp) / "x.npy", Path(tmp) / "xy.npy"
        np.save(source, x)
        command = [sys.executable, "-m", "ledrec.look.project", str(source), str(target), str(seed)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"t-SNE exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        xy = np.load(target, allow_pickle=False)
    return ItemMap(items, xy, "t-SNE", time.perf_counter() - t0)
