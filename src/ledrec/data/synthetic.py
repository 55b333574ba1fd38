"""A seeded synthetic multi-feedback event log: the embedded default data (no download needed).

The ground truth, written down so that results on it can be interpreted:

* Items have a topic (uniform over ``n_topics``), a partition (country; each item sold in one), a quality
  ``q_i ~ Beta(2, 2)`` and a power-law popularity weight ``w_i ∝ rank^-popularity_exponent`` (ranks
  shuffled, so popularity is independent of topic).
* Users live in one partition and have sparse interests ``θ_u ~ Dirichlet(interest_concentration)`` over
  topics.
* A user's timeline has ``1 + Poisson(views_per_user - 1)`` views. Each view picks a topic from ``θ_u``,
  then an item of that topic in the user's partition with probability ∝ ``w_i``.
* A view leads to a click with probability ``click_rate · q_i · θ_u[topic] / max θ_u``; a click leads to
  a sale with probability ``sale_rate · q_i``. Clicks and sales follow their view in time.

Timestamps are seconds over ``days`` simulated days; each user's views are in time order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ledrec.config import check_fields, option
from ledrec.data.interactions import Interactions, Vocabulary
from ledrec.errors import ConfigError
from ledrec.io import atomic_path, write_json

FEEDBACK_TYPES = ("view", "click", "sale")
DAY = 86_400


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic world (module docstring); each field is also a flag of ``ledrec data synthetic``."""

    n_users: int = option(5_000, "users", low=1)
    n_items: int = option(2_000, "items (at least n_topics × n_partitions)", low=1)
    n_topics: int = option(20, "topics of items and of users' interests", low=1)
    n_partitions: int = option(3, "partitions (countries): each user and item lives in one", low=1)
    views_per_user: float = option(30.0, "mean views per user timeline", low=1.0)
    popularity_exponent: float = option(1.0, "item popularity ∝ rank^-exponent", low=0.0)
    interest_concentration: float = option(0.1, "Dirichlet concentration of interests", low=0.0, low_open=True)
    click_rate: float = option(0.3, "click probability scale of a view", low=0.0, high=1.0)
    sale_rate: float = option(0.2, "sale probability scale of a click", low=0.0, high=1.0)
    days: int = option(30, "simulated days the timestamps span", low=1)
    seed: int = option(0, "seed of everything", low=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_items < self.n_topics * self.n_partitions:
            raise ConfigError("n_items must be at least n_topics * n_partitions (every topic sold everywhere)")


def generate(config: SyntheticConfig | None = None) -> Interactions:
    """Generate the event log described in the module docstring; identical output for identical config."""
    c = config or SyntheticConfig()
    rng = np.random.default_rng(c.seed)

    # ---- items: every (partition, topic) cell gets at least one item, the rest uniformly
    cells = np.arange(c.n_partitions * c.n_topics)
    cell_of_item = np.concatenate([cells, rng.integers(0, len(cells), c.n_items - len(cells))])
    rng.shuffle(cell_of_item)
    item_partition, item_topic = np.divmod(cell_of_item, c.n_topics)
    quality = rng.beta(2.0, 2.0, c.n_items)
    weight = (1.0 + rng.permutation(c.n_items)) ** -c.popularity_exponent

    # ---- users
    user_partition = rng.integers(0, c.n_partitions, c.n_users)
    interests = rng.dirichlet(np.full(c.n_topics, c.interest_concentration), c.n_users)  # (U, T)
    n_views = 1 + rng.poisson(c.views_per_user - 1, c.n_users)

    # ---- views: topic from θ_u (inverse CDF), then an item of that cell ∝ popularity
    user = np.repeat(np.arange(c.n_users), n_views)
    cum = np.cumsum(interests, axis=1)
    topic = (rng.random(len(user))[:, None] * cum[user, -1:] > cum[user]).sum(axis=1)
    topic = np.minimum(topic, c.n_topics - 1)
    cell = user_partition[user] * c.n_topics + topic
    item = sample_by_group(rng, cell, cell_of_item, weight)

    # ---- times: each user starts at a random moment and views at exponential gaps (mean 1 hour)
    start = rng.uniform(0, c.days * DAY * 0.5, c.n_users)
    gaps = rng.exponential(3600.0, len(user))
    first = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first] - gaps[first], n_views)
    view_time = np.minimum(start[user] + offsets, c.days * DAY - 1).astype(np.int64)

    # ---- clicks and sales
    affinity = interests[user, item_topic[item]] / interests[user].max(axis=1)
    clicked = rng.random(len(user)) < c.click_rate * quality[item] * affinity
    sold = clicked & (rng.random(len(user)) < c.sale_rate * quality[item])
    click_time = view_time + rng.integers(1, 120, len(user))
    sale_time = click_time + rng.integers(60, 1800, len(user))

    users = np.concatenate([user, user[clicked], user[sold]])
    items = np.concatenate([item, item[clicked], item[sold]])
    feedback = np.concatenate([np.zeros(len(user)), np.ones(clicked.sum()), np.full(sold.sum(), 2)]).astype(np.int8)
    times = np.concatenate([view_time, click_time[clicked], sale_time[sold]])
    order = np.lexsort((feedback, times, users))  # per user, in time order
    return Interactions(
        user=users[order].astype(np.int32),
        item=items[order].astype(np.int32),
        users=Vocabulary(np.array([f"u{i}" for i in range(c.n_users)])),
        items=Vocabulary(np.array([f"i{i}" for i in range(c.n_items)])),
        feedback=feedback[order],
        feedback_types=FEEDBACK_TYPES,
        timestamp=times[order],
        partition=item_partition[items[order]].astype(np.int32),
        partitions=Vocabulary(np.array([f"country{p}" for p in range(c.n_partitions)])),
        source=f"synthetic(seed={c.seed})",
    )


def sample_by_group(
    rng: np.random.Generator, cell: np.ndarray, cell_of_item: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """For each event, an element of its group drawn with probability ∝ weight (vectorised by inverse CDF).

    ``cell`` (n,): the group of each draw; ``cell_of_item`` (m,): the group of each element; every drawn
    group must have an element. Returns (n,) element indices."""
    by_cell = np.argsort(cell_of_item, kind="stable")  # items grouped by cell
    bounds = np.searchsorted(cell_of_item[by_cell], np.arange(cell_of_item.max() + 2))
    cum = np.cumsum(weight[by_cell])
    base = np.concatenate([[0.0], cum])
    lo, hi = base[bounds[cell]], base[bounds[cell + 1]]
    u = lo + rng.random(len(cell)) * (hi - lo)
    pos = np.searchsorted(cum, u, side="right")
    pos = np.clip(pos, bounds[cell], bounds[cell + 1] - 1)  # guard against float rounding at cell edges
    return by_cell[pos]


def write_events(data: Interactions, path: str | Path, config: SyntheticConfig | None = None) -> Path:
    """Write an event log as a Parquet table (user, item, event, timestamp, partition), atomically, with a
    JSON sidecar holding the generator config."""
    path = Path(path)
    columns = {
        "user": data.users.ids[data.user],
        "item": data.items.ids[data.item],
        "event": np.asarray(data.feedback_types)[data.feedback],
    }
    if data.timestamp is not None:
        columns["timestamp"] = data.timestamp
    if data.partition is not None and data.partitions is not None:
        columns["partition"] = data.partitions.ids[data.partition]
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    if config is not None:
        write_json(path.with_suffix(".json"), {"generator": "ledrec.data.synthetic", "config": asdict(config)})
    return path


def write_synthetic(path: str | Path, config: SyntheticConfig | None = None) -> dict[str, Any]:
    """Generate the event log of ``config`` (:func:`generate`), write it to ``path`` (:func:`write_events`,
    with the config beside it) and return what ``ledrec generate`` prints: path, events, users, items and
    events per feedback type."""
    config = config or SyntheticConfig()
    data = generate(config)
    written = write_events(data, path, config)
    return {
        "path": str(written),
        "events": len(data),
        "users": data.n_users,
        "items": data.n_items,
        "feedback": data.feedback_counts(),
    }
