"""A production-like retargeting log (seed paper §6-§7, Table 1): merchants, countries, categories, prices,
organic views across merchants, banner displays, clicks and sales — with a written-down ground truth.

The ground truth (:class:`GroundTruth`) is deliberately *not* of LED's form (no user/item inner product):

* **Catalogue.** ``n_merchants`` merchants, each in one country and selling ``categories_per_merchant``
  categories (every category is sold in every country). Items belong to one (merchant, category) cell and
  have a price (log-normal around a per-category level), a quality ``q ~ Beta(2, 2)`` and a power-law
  popularity weight ``w ∝ rank^-popularity_exponent`` (ranks shuffled: popularity independent of the rest).
  Each category has one *complementary* category (phone → phone case): a random derangement.
* **Users** live in one country, have sparse long-term interests ``θ_u ~ Dirichlet(interest_concentration)``
  over categories, a log-budget ``b_u`` and an activity level ``λ_u ~ Gamma(1, views_per_day)``.
* **Browsing** (organic views): a category from ``θ_u`` — replaced by its complement with probability
  ``complement_rate`` —, then a merchant of the user's country selling it (∝ merchant size), then an item of
  that cell ∝ ``w``.
* **Clicks** on a displayed item at position ``p`` (0 = first), given the category ``r`` the user was just
  browsing::

      logit = click_bias + 0.6·log(C·θ_u[c_i] + 0.05) + 1.0·[c_i = r] + complement_effect·[c_i = complement(r)]
              + 1.0·(q_i − 0.5) − 0.5·(log price_i − b_u)²
      P(click) = sigmoid(logit) · (1 + p)^-position_decay

  (``complement_effect`` = 1.2 by default): what matters is category interest, the *complement of the
  current intent* (an item-to-item relation that no popularity or cluster statistic captures, but
  co-occurrence does), quality and price fit.
* **Sales** after a click: ``sale_rate · q_i · exp(−0.5·(log price_i − b_u)²)``; order value = price.

The logged displays of :func:`generate_log` come from a simple *logging policy*: after a view, with
probability ``banners_per_view`` the user is shown a banner of 2-10 items of the viewed merchant, drawn ∝
``√w`` (a flattened popularity: the exploration a production log has). Everything is seeded and vectorised
(1M users × 100k items fits this 2-core box).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from ledrec.config import check_fields, option
from ledrec.data.interactions import DataError, Vocabulary, dedupe_rows, user_item_matrix
from ledrec.data.splits import PreparedData, eval_set
from ledrec.data.synthetic import DAY, sample_by_group
from ledrec.errors import ConfigError
from ledrec.io import atomic_path, write_json

EVENTS = ("view", "display", "click", "sale")
VIEW, DISPLAY, CLICK, SALE = range(4)


@dataclass(frozen=True)
class ProductionConfig:
    """The simulated production world (module docstring); each field is also a flag of ``ledrec simulate``."""

    n_users: int = option(50_000, "users", low=1)
    n_items: int = option(10_000, "items: every (merchant, category) cell needs one", low=1)
    n_merchants: int = option(60, "merchants (at least one per country)", low=1)
    n_countries: int = option(3, "countries: each user and merchant lives in one", low=1)
    n_categories: int = option(40, "categories (each has a different complement)", low=2)
    categories_per_merchant: int = option(6, "categories each merchant sells", low=1)
    days: int = option(28, "simulated days", low=1)
    views_per_day: float = option(0.7, "mean organic views per user per day (activity ~ Gamma(1, this))", low=0.0)
    banners_per_view: float = option(0.3, "probability of a banner after a view", low=0.0, high=1.0)
    min_banner: int = option(2, "fewest items in a banner", low=1)
    max_banner: int = option(10, "most items in a banner", low=1)
    popularity_exponent: float = option(1.0, "item popularity ∝ rank^-exponent", low=0.0)
    interest_concentration: float = option(0.15, "Dirichlet concentration of users' interests", low=0.0, low_open=True)
    complement_rate: float = option(0.25, "probability a browse goes to the complement category", low=0.0, high=1.0)
    complement_effect: float = option(1.2, "click logit bonus of the browsed category's complement")
    click_bias: float = option(-2.5, "click logit intercept")
    position_decay: float = option(0.7, "click probability × (1 + position)^-decay", low=0.0)
    sale_rate: float = option(0.3, "sale probability scale of a click", low=0.0, high=1.0)
    seed: int = option(0, "seed of the world and its log", low=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_merchants < self.n_countries:
            raise ConfigError("n_merchants must be >= n_countries (every country has a merchant)")
        if self.categories_per_merchant > self.n_categories:
            raise ConfigError("categories_per_merchant must be in [1, n_categories]")
        if self.min_banner > self.max_banner:
            raise ConfigError("need 1 <= min_banner <= max_banner")
        if self.n_items < self.n_merchants * self.categories_per_merchant + self.n_countries * self.n_categories:
            raise ConfigError("n_items too small: every (merchant, category) cell needs an item")


class GroundTruth:
    """The hidden world: catalogue, users, and how they browse, click and buy (module docstring)."""

    def __init__(self, config: ProductionConfig) -> None:
        c = self.config = config
        rng = np.random.default_rng([c.seed, 0])
        n_cat = c.n_categories
        # ---- merchants: a country each (round robin, so every country has one), a size, their categories
        self.merchant_country = np.arange(c.n_merchants) % c.n_countries
        self.merchant_weight = rng.pareto(1.5, c.n_merchants) + 1.0
        sells = np.zeros((c.n_merchants, n_cat), dtype=bool)
        for m in range(c.n_merchants):
            sells[m, rng.choice(n_cat, c.categories_per_merchant, replace=False)] = True
        for country in range(c.n_countries):  # every category sold in every country
            ms = np.flatnonzero(self.merchant_country == country)
            for cat in np.flatnonzero(~sells[ms].any(axis=0)):
                sells[rng.choice(ms), cat] = True
        cell_merchant, cell_category = np.nonzero(sells)  # (n_cells,)
        self.cell_merchant, self.cell_category = cell_merchant, cell_category
        # ---- items: one per cell first, the rest ∝ merchant size
        n_cells = len(cell_merchant)
        p = self.merchant_weight[cell_merchant] / self.merchant_weight[cell_merchant].sum()
        cell_of_item = np.concatenate([np.arange(n_cells), rng.choice(n_cells, c.n_items - n_cells, p=p)])
        rng.shuffle(cell_of_item)
        self.item_cell = cell_of_item
        self.item_merchant = cell_merchant[cell_of_item]
        self.item_category = cell_category[cell_of_item]
        self.item_country = self.merchant_country[self.item_merchant]
        category_price = rng.normal(3.5, 1.0, n_cat)  # log price level per category (≈ 33 on average)
        self.item_log_price = category_price[self.item_category] + rng.normal(0, 0.5, c.n_items)
        self.item_price = np.round(np.exp(self.item_log_price), 2)
        self.item_quality = rng.beta(2.0, 2.0, c.n_items)
        self.item_weight = (1.0 + rng.permutation(c.n_items)) ** -c.popularity_exponent
        self.complement = (np.arange(n_cat) + rng.integers(1, n_cat, n_cat)) % n_cat  # never itself
        # ---- users
        self.user_country = rng.integers(0, c.n_countries, c.n_users)
        self.user_interest = rng.dirichlet(np.full(n_cat, c.interest_concentration), c.n_users).astype(np.float32)
        self.user_log_budget = rng.normal(3.5, 1.0, c.n_users)
        self.user_activity = rng.gamma(1.0, c.views_per_day, c.n_users)

    @property
    def n_users(self) -> int:
        return self.config.n_users

    @property
    def n_items(self) -> int:
        return self.config.n_items

    # ---------------------------------------------------------------- behaviour
    def browse(self, users: np.ndarray, rng: np.random.Generator, chunk: int = 1 << 20) -> np.ndarray:
        """One organic view per entry of ``users``: the viewed item (in chunks: memory ∝ chunk × C)."""
        if len(users) > chunk:
            return np.concatenate([self.browse(users[i : i + chunk], rng, chunk) for i in range(0, len(users), chunk)])
        c = self.config
        cum = np.cumsum(self.user_interest[users], axis=1)  # (n, C)
        cat = (rng.random(len(users))[:, None] * cum[:, -1:] > cum).sum(axis=1)
        cat = np.minimum(cat, c.n_categories - 1)
        swap = rng.random(len(users)) < c.complement_rate
        cat = np.where(swap, self.complement[cat], cat)
        group_of_cell = self.merchant_country[self.cell_merchant] * c.n_categories + self.cell_category
        group = self.user_country[users] * c.n_categories + cat
        cell = sample_by_group(rng, group, group_of_cell, self.merchant_weight[self.cell_merchant])
        return sample_by_group(rng, cell, self.item_cell, self.item_weight)

    def click_probability(
        self, users: np.ndarray, items: np.ndarray, intent: np.ndarray, positions: np.ndarray
    ) -> np.ndarray:
        """P(click) of displayed ``items`` at ``positions`` to ``users`` browsing category ``intent``."""
        c = self.config
        cat = self.item_category[items]
        interest = self.user_interest[users, cat]
        price_gap = self.item_log_price[items] - self.user_log_budget[users]
        logit = (
            c.click_bias
            + 0.6 * np.log(c.n_categories * interest + 0.05)
            + 1.0 * (cat == intent)
            + c.complement_effect * (cat == self.complement[intent])
            + 1.0 * (self.item_quality[items] - 0.5)
            - 0.5 * price_gap**2
        )
        return (1.0 + positions) ** -c.position_decay / (1.0 + np.exp(-logit))

    def sale_probability(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(sale | click)."""
        price_gap = self.item_log_price[items] - self.user_log_budget[users]
        return self.config.sale_rate * self.item_quality[items] * np.exp(-0.5 * price_gap**2)

    def catalog(self) -> dict[str, np.ndarray]:
        return {
            "item": np.arange(self.n_items),
            "merchant": self.item_merchant,
            "country": self.item_country,
            "category": self.item_category,
            "price": self.item_price,
        }


@dataclass
class EventLog:
    """Column arrays of an event table, in (user, time) order; ``banner``/``position`` are -1 off banners."""

    user: np.ndarray
    item: np.ndarray
    event: np.ndarray  # int8 code into EVENTS
    banner: np.ndarray
    position: np.ndarray
    timestamp: np.ndarray
    value: np.ndarray  # order value of sales, 0 otherwise

    def __len__(self) -> int:
        return len(self.user)

    def select(self, mask: np.ndarray) -> EventLog:
        return EventLog(**{k: v[mask] for k, v in self.__dict__.items()})

    @classmethod
    def concat(cls, parts: list[EventLog]) -> EventLog:
        return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in cls.__dataclass_fields__})

    def sorted(self) -> EventLog:
        order = np.lexsort((self.position, self.event, self.timestamp, self.user))
        return self.select(order)


def draw_outcomes(
    truth: GroundTruth, users: np.ndarray, banners: np.ndarray, intent: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Show banners (n, B) of item indices (-1 = empty slot) to ``users`` browsing category ``intent`` (n,)
    and draw what happens. Returns the (row, position) of every displayed item and whether it was clicked
    and sold."""
    row, pos = np.nonzero(banners >= 0)
    u, it = users[row], banners[row, pos]
    clicked = rng.random(len(row)) < truth.click_probability(u, it, intent[row], pos)
    sold = clicked & (rng.random(len(row)) < truth.sale_probability(u, it))
    return row, pos, clicked, sold


def show_banners(
    truth: GroundTruth,
    users: np.ndarray,
    banners: np.ndarray,
    intent: np.ndarray,
    times: np.ndarray,
    first_banner_id: int,
    rng: np.random.Generator,
) -> EventLog:
    """:func:`draw_outcomes` as events: a display per shown item, then its click (30 s later) and sale
    (15 min later). ``times`` are per banner; banner ids are consecutive from ``first_banner_id``."""
    row, pos, clicked, sold = draw_outcomes(truth, users, banners, intent, rng)
    u, it, bid, t = users[row], banners[row, pos], first_banner_id + row, times[row]
    parts = []
    for mask, code, dt in ((slice(None), DISPLAY, 0), (clicked, CLICK, 30), (sold, SALE, 900)):
        k = len(u[mask])
        parts.append(
            EventLog(
                user=u[mask],
                item=it[mask],
                event=np.full(k, code, np.int8),
                banner=bid[mask],
                position=pos[mask].astype(np.int16),
                timestamp=t[mask] + dt,
                value=truth.item_price[it[mask]] if code == SALE else np.zeros(k),
            )
        )
    return EventLog.concat(parts)


def views(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> EventLog:
    n = len(users)
    return EventLog(
        user=users,
        item=items,
        event=np.full(n, VIEW, np.int8),
        banner=np.full(n, -1, np.int64),
        position=np.full(n, -1, np.int16),
        timestamp=times,
        value=np.zeros(n),
    )


def generate_log(truth: GroundTruth, rng: np.random.Generator | None = None) -> EventLog:
    """``days`` of organic views and logging-policy banners (module docstring), sorted by user and time."""
    c = truth.config
    rng = rng or np.random.default_rng([c.seed, 1])
    n_views = rng.poisson(truth.user_activity * c.days)
    user = np.repeat(np.arange(c.n_users), n_views)
    item = truth.browse(user, rng)
    time = rng.integers(0, c.days * DAY, len(user))
    order = np.lexsort((time, user))
    user, item, time = user[order], item[order], time[order]
    # ---- banners after some views, from the viewed merchant, drawn ∝ √w without repeats in a banner
    trig = np.flatnonzero(rng.random(len(user)) < c.banners_per_view)
    banners = logging_policy_banners(truth, truth.item_merchant[item[trig]], rng)
    shown = show_banners(
        truth,
        user[trig],
        banners,
        truth.item_category[item[trig]],
        time[trig] + rng.integers(60, 3600, len(trig)),
        0,
        rng,
    )
    return EventLog.concat([views(user, item, time), shown]).sorted()


def logging_policy_banners(truth: GroundTruth, merchants: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, max_banner) banners of the logging policy: a random size, items of the merchant ∝ √popularity
    (drawn with replacement; repeats become empty slots, -1, moved to the end)."""
    c = truth.config
    n = len(merchants)
    size = rng.integers(c.min_banner, c.max_banner + 1, n)
    draws = sample_by_group(
        rng, np.repeat(merchants, c.max_banner), truth.item_merchant, np.sqrt(truth.item_weight)
    ).reshape(n, c.max_banner)
    draws[np.arange(c.max_banner)[None, :] >= size[:, None]] = -1
    return dedupe_rows(draws)


def write_dataset(truth: GroundTruth, log: EventLog, directory: str | Path) -> Path:
    """``DIR/events.parquet`` (user, item, event, banner, position, merchant, country, timestamp, value),
    ``DIR/items.parquet`` (the catalogue) and ``DIR/manifest.json`` (the generator config), atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_users, n_items = truth.n_users, truth.n_items
    # ids as dictionary columns ("u17", "i42", "m3", "c0"): string ids for readers, integer storage, and
    # 1M users x 100k items written without materialising tens of millions of Python strings
    table = pa.table(
        {
            "user": _labels("u", log.user, n_users),
            "item": _labels("i", log.item, n_items),
            "event": pa.DictionaryArray.from_arrays(log.event.astype(np.int32), list(EVENTS)),
            "banner": log.banner,
            "position": log.position,
            "merchant": _labels("m", truth.item_merchant[log.item], truth.config.n_merchants),
            "country": _labels("c", truth.item_country[log.item], truth.config.n_countries),
            "timestamp": log.timestamp,
            "value": log.value,
        }
    )
    with atomic_path(directory / "events.parquet") as tmp:
        pq.write_table(table, tmp)
    cat = truth.catalog()
    catalog = pa.table(
        {
            "item": np.char.add("i", cat["item"].astype(str)),
            "merchant": np.char.add("m", cat["merchant"].astype(str)),
            "country": np.char.add("c", cat["country"].astype(str)),
            "category": cat["category"],
            "price": cat["price"],
        }
    )
    with atomic_path(directory / "items.parquet") as tmp:
        pq.write_table(catalog, tmp)
    write_json(directory / "manifest.json", {"generator": __name__, "config": asdict(truth.config), **summary(log)})
    return directory


def _labels(prefix: str, codes: np.ndarray, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(codes.astype(np.int32), np.char.add(prefix, np.arange(n).astype(str)))


def summary(log: EventLog) -> dict[str, Any]:
    counts = np.bincount(log.event, minlength=len(EVENTS))
    return {
        "events": {name: int(n) for name, n in zip(EVENTS, counts, strict=True)},
        "users": len(np.unique(log.user)),
        "banners": len(np.unique(log.banner[log.banner >= 0])),
        "order_value": round(float(log.value.sum()), 2),
    }


def read_events(directory: str | Path) -> tuple[EventLog, dict[str, Any]]:
    """Read back what :func:`write_dataset` wrote (integer user/item indices from the ``u``/``i`` ids)."""
    directory = Path(directory)
    table = pq.read_table(directory / "events.parquet")

    def ids(name: str) -> np.ndarray:
        column = table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):  # decode the (small) dictionary once, then take the codes
            values = np.char.lstrip(column.dictionary.to_numpy(zero_copy_only=False).astype(str), name[0])
            return values.astype(np.int64)[column.indices.to_numpy()]
        return np.char.lstrip(column.to_numpy(zero_copy_only=False).astype(str), name[0]).astype(np.int64)

    event = table.column("event").combine_chunks()
    if pa.types.is_dictionary(event.type):  # codes through the file's own dictionary
        lookup = np.array([EVENTS.index(v) for v in event.dictionary.to_pylist()], np.int8)
        codes = lookup[event.indices.to_numpy()]
    else:
        codes = np.array([EVENTS.index(v) for v in event.to_pylist()], np.int8)
    log = EventLog(
        user=ids("user"),
        item=ids("item"),
        event=codes,
        banner=table.column("banner").to_numpy().astype(np.int64),
        position=table.column("position").to_numpy().astype(np.int16),
        timestamp=table.column("timestamp").to_numpy().astype(np.int64),
        value=table.column("value").to_numpy().astype(np.float64),
    )
    manifest = json.loads((directory / "manifest.json").read_text())
    return log, manifest


def generate_world(config: ProductionConfig, directory: str | Path) -> dict[str, Any]:
    """``ledrec simulate generate``: the world of ``config`` (:class:`GroundTruth`) and its logged events
    (:func:`generate_log`), written to ``directory`` (:func:`write_dataset`); returns the log's
    :func:`summary`."""
    truth = GroundTruth(config)
    event_log = generate_log(truth)
    write_dataset(truth, event_log, directory)
    return summary(event_log)


def world_log(directory: str | Path | None = None, config: ProductionConfig | None = None) -> tuple[EventLog, int]:
    """(event log, number of items) of a directory written by :func:`write_dataset`, or, without one, of a
    world generated from ``config`` (default: the default world)."""
    if directory:
        event_log, manifest = read_events(directory)
        return event_log, int(manifest["config"]["n_items"])
    truth = GroundTruth(config or ProductionConfig())
    return generate_log(truth), truth.n_items


# ============================================================================ the production protocol (§9.2)
@dataclass
class BannerSet:
    """Clicked banners of a target period, for click-rank: ``rows`` index the eval set's users."""

    rows: np.ndarray  # (n_banners,)
    items: np.ndarray  # (n_banners, max_banner) item indices, -1 = empty slot
    clicked: np.ndarray  # (n_banners, max_banner) bool


def production_protocol(
    log: EventLog, n_items: int, *, target_days: int = 7, valid_users: float = 0.1, seed: int = 0
) -> tuple[PreparedData, dict[str, BannerSet], sp.csr_matrix]:
    """The seed paper's offline protocol on production data (§9.2), on a log of :func:`generate_log`.

    * Target period: the last ``target_days`` days of the log. Test users: those with a click in it;
      their input = views and clicks before it; their targets = the items they clicked in it (items they
      had already clicked are neither targets nor ranked; viewed items stay rankable — retargeting).
    * The input period is split by user 90/10: training users give the fitting matrices (inputs = views +
      clicks, targets = clicks, pre-training on views, and per user the displayed-but-not-clicked items
      as BPR negatives); validation users are evaluated like test users, one period earlier (input before
      the last 2·``target_days`` days, targets = clicks of the ``target_days`` after).

    Returns the prepared data (``fit_valid`` is ``fit_test``: no refit), the clicked banners of the
    validation and test users in their target periods (``{"valid": …, "test": …}``, for click-rank), and
    the negatives matrix of the training users (rows of ``fit_test``).
    """
    end = int(log.timestamp.max()) + 1
    cut = end - target_days * DAY
    valid_cut = cut - target_days * DAY
    if valid_cut <= int(log.timestamp.min()):
        raise DataError(f"the log spans less than {2 * target_days} days: no input period to validate on")
    n_users = int(log.user.max()) + 1
    rng = np.random.default_rng(seed)
    is_input = (log.event == VIEW) | (log.event == CLICK)

    def matrix(mask: np.ndarray) -> sp.csr_matrix:
        return user_item_matrix(log.user[mask], log.item[mask], (n_users, n_items))

    before = log.timestamp < cut
    inputs, clicks_before = matrix(is_input & before), matrix((log.event == CLICK) & before)
    displayed = matrix((log.event == DISPLAY) & before)
    negatives = (displayed - displayed.multiply(clicks_before)).tocsr()
    negatives.eliminate_zeros()
    target_clicks = matrix((log.event == CLICK) & ~before)

    active = np.flatnonzero(np.diff(inputs.indptr) > 0)
    shuffled = rng.permutation(active)
    n_valid = round(valid_users * len(active))
    valid_rows, train_rows = np.sort(shuffled[:n_valid]), np.sort(shuffled[n_valid:])
    early = log.timestamp < valid_cut
    v_input, v_clicked = matrix(is_input & early), matrix((log.event == CLICK) & early)
    v_target = matrix((log.event == CLICK) & ~early & before)
    user_ids = np.char.add("u", np.arange(n_users).astype(str))
    valid = eval_set(
        v_input[valid_rows], v_target[valid_rows], user_ids[valid_rows], v_clicked[valid_rows], v_clicked[valid_rows]
    )
    test = eval_set(inputs, target_clicks, user_ids, clicks_before, clicks_before)
    views_before = matrix((log.event == VIEW) & before)
    items = Vocabulary(np.char.add("i", np.arange(n_items).astype(str)))
    data = PreparedData(
        "production",
        "bars",
        items,
        fit_valid=inputs[train_rows],
        valid=valid,
        fit_test=inputs[train_rows],
        test=test,
        meta={"split": "production (§9.2)", "target_days": target_days, "seed": seed},
        targets={"fit_valid": clicks_before[train_rows], "fit_test": clicks_before[train_rows]},
        pretrain={"fit_valid": views_before[train_rows], "fit_test": views_before[train_rows]},
    )
    data.fit_test = data.fit_valid  # one training matrix: the model chosen on validation is the final one
    banners = {
        "valid": _clicked_banners(log, valid_cut, cut, valid.user_ids, n_users),
        "test": _clicked_banners(log, cut, end, test.user_ids, n_users),
    }
    return data, banners, negatives[train_rows]


def _clicked_banners(log: EventLog, start: int, end: int, eval_user_ids: np.ndarray, n_users: int) -> BannerSet:
    """Banners shown in [start, end) to the users of an eval set that got at least one click."""
    row_of_user = np.full(n_users, -1)
    row_of_user[np.char.lstrip(eval_user_ids.astype(str), "u").astype(np.int64)] = np.arange(len(eval_user_ids))
    after = (log.timestamp >= start) & (log.timestamp < end) & (log.banner >= 0) & (row_of_user[log.user] >= 0)
    shown = after & (log.event == DISPLAY)
    banner, item, pos, user = log.banner[shown], log.item[shown], log.position[shown], log.user[shown]
    width_items = int(log.item.max()) + 1
    key = banner.astype(np.int64) * width_items + item  # (banner, item) as one integer
    clicks = after & (log.event == CLICK)
    click = np.isin(key, log.banner[clicks].astype(np.int64) * width_items + log.item[clicks])
    ids, index = np.unique(banner, return_inverse=True)
    width = int(pos.max()) + 1 if len(pos) else 1
    items = np.full((len(ids), width), -1, np.int64)
    clicked = np.zeros((len(ids), width), bool)
    items[index, pos], clicked[index, pos] = item, click
    rows = np.zeros(len(ids), np.int64)
    rows[index] = row_of_user[user]
    keep = clicked.any(axis=1)
    return BannerSet(rows[keep], items[keep], clicked[keep])
