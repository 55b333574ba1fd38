"""The daily pipeline's settings: declared once as :class:`~ledrec.config.Option` objects, from which the
TOML file's keys, the command-line flags, their help and the checks all derive.

A config file is TOML: the pipeline's keys at the top level, LED's options (``help(ledrec.LED)``) in a
``[led]`` table::

    events = "events/"            # a Parquet file, a folder of Parquet files (one per day), or a CSV file
    out = "published/"
    days = 28
    input_feedback = "view,click"
    target_feedback = "sale"

    [led]
    dim = 64
    epochs = 10

A flag given on the command line wins over the file, the file over the defaults.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledrec.config import Option
from ledrec.errors import ConfigError

OPTIONS: tuple[Option, ...] = (
    Option("events", str, "", "event table: a Parquet file, a folder of Parquet files (e.g. one per day), or CSV"),
    Option("out", str, "", "the published root the service reads: ROOT/<catalogue>/current -> versions/<V>"),
    Option("work_dir", str, "", "stage outputs kept for resuming (default: OUT/.work)"),
    Option("partition_column", str, "", "column naming the catalogue (default: partition, country, merchant …)"),
    Option("catalogues", str, "", "comma-separated catalogues to run (default: every value of the column)"),
    Option("days", float, None, "time window: this many days back from the latest event", low=0.0, low_open=True),
    Option("since", str, "", "time window: events from this time (ISO date or seconds) instead of --days"),
    Option("until", str, "", "ignore events from this time on (ISO date or seconds): replay a past day"),
    Option(
        "holdout_days",
        float,
        1.0,
        "the last D days are the holdout: users' earlier events are the input, their events in it the targets",
        low=0.0,
        low_open=True,
    ),
    Option("input_feedback", str, "", "comma-separated event types of the input (default: all)"),
    Option("target_feedback", str, "", "comma-separated event types to predict (default: the input's)"),
    Option("pretrain_feedback", str, "", "event types the SVD pre-training counts (default: the input's)"),
    Option(
        "min_rating",
        float,
        None,
        "keep only the events rated at least this (a rating column: explicit feedback as likes; default: all)",
    ),
    Option(
        "exclude",
        str,
        "history",
        "history: never recommend an item of the history; target: only items already had as a target",
        choices=("history", "target"),
    ),
    Option(
        "window",
        int,
        None,
        "pre-training counts item pairs within W positions of a time-ordered timeline (default: all pairs of a "
        "timeline, which grows with its length squared)",
        low=1,
    ),
    Option("k", int, 20, "the holdout metric and the gate use Recall@k", low=1),
    Option("holdout_users", int, 10_000, "holdout users evaluated (a seeded sample when there are more)", low=1),
    Option(
        "min_holdout_users",
        int,
        100,
        "holdout users (with a target) the gate needs to replace a published model: on fewer, the published "
        "model keeps serving and the report warns (a first version is published, with the warning); the "
        "standard error of a mean of n per-user recalls is up to 0.5/sqrt(n): .05 at 100 users",
        low=1,
    ),
    Option(
        "gate_margin",
        float,
        0.05,
        "publish only if the new model's holdout Recall@k >= (1 - margin) x the published model's, on the same holdout",
        low=0.0,
        high=1.0,
    ),
    Option(
        "variants",
        str,
        "project,full,spectral,wls",
        "LED's variants to choose among, per catalogue, on validation (a TOML list or comma-separated): project and "
        "full (the paper's training from the SVD start; project: the production one), spectral (a closed form), "
        "wls (ALS's loss in LED's form; not for targets other than the inputs); each trained once",
    ),
    Option(
        "refit",
        bool,
        True,
        "publish the chosen model refit on the whole window, holdout included (the gate scores it before the "
        "refit); false: publish the model the gate scored",
    ),
    Option("keep", int, 5, "versions kept per catalogue (the current one always)", low=1),
    Option("engine", str, "local", "pre-training engine", choices=("local", "spark")),
    Option("master", str, "local[2]", "Spark master for --engine spark"),
    Option("seed", int, 0, "seed of the pre-training, the training and the holdout sample", low=0),
)
BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class PipelineConfig:
    values: dict[str, Any]  # every option of OPTIONS, checked
    led: dict[str, Any]  # LED options, checked by LED itself

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def work(self) -> Path:
        return Path(self.values["work_dir"] or Path(self.values["out"]) / ".work")

    def list(self, name: str) -> list[str] | None:
        """A comma-separated option as a list (None when empty)."""
        items = [v.strip() for v in str(self.values[name]).split(",") if v.strip()]
        return items or None

    def as_dict(self) -> dict[str, Any]:
        return {**self.values, "led": self.led}


def load(
    path: str | None = None, overrides: dict[str, Any] | None = None, led: dict[str, Any] | None = None
) -> PipelineConfig:
    """The settings of a TOML file (optional), with ``overrides`` (flags given) and ``led`` options on top;
    ConfigError naming the file and key for anything unknown or out of range."""
    raw: dict[str, Any] = {}
    where = "pipeline config"
    if path:
        where = str(path)
        if Path(path).is_dir():
            raise ConfigError(
                f"{path}: a folder, not a TOML config file; events go in with --events {path} (and --out ROOT)"
            )
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    led_table = raw.pop("led", {})
    if not isinstance(led_table, dict):
        raise ConfigError(f"{where}: [led] must be a table of LED options")
    if isinstance(raw.get("variants"), list):  # variants = ["project", "spectral"]
        raw["variants"] = ",".join(str(v) for v in raw["variants"])
    unknown = sorted(set(raw) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(BY_NAME)} and a [led] table")
    given = {**raw, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    values = {o.name: o.check(given.get(o.name, o.default), where) for o in OPTIONS}
    for name in ("events", "out"):
        if not values[name]:
            raise ConfigError(f"{where}: {name} is required (--{name} or the key {name} of the config file)")
    for name in ("since", "until"):
        if values[name]:
            from ledrec.data.stream import parse_time  # (pyarrow: when a config is loaded, not for --help)

            try:
                parse_time(values[name])
            except ValueError as exc:  # (DataError)
                raise ConfigError(f"{where}: {name}: {exc}") from None
    if values["days"] is not None and values["since"]:
        raise ConfigError(f"{where}: give days or since, not both")
    if values["days"] is not None and values["days"] <= 2 * values["holdout_days"]:
        # the last holdout_days are the holdout and the same span before them LED's validation: nothing
        # would be left to train on
        raise ConfigError(
            f"{where}: days ({values['days']:g}) must be more than 2 x holdout_days ({values['holdout_days']:g}): "
            "the last holdout_days are the holdout, the same span before them the validation, the rest trains"
        )
    if values["holdout_users"] < values["min_holdout_users"]:
        raise ConfigError(
            f"{where}: holdout_users ({values['holdout_users']}) is below min_holdout_users "
            f"({values['min_holdout_users']}): the gate could never replace a published model"
        )
    led_params = {**led_table, **(led or {})}
    _check_led(led_params, where)
    _check_variants(values["variants"], where)
    return PipelineConfig(values, led_params)


def _check_variants(text: str, where: str) -> None:
    from ledrec.models.led import VARIANTS

    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ConfigError(f"{where}: variants must be among {', '.join(VARIANTS)}, not {text!r}")


def _check_led(params: dict[str, Any], where: str) -> None:
    from ledrec.models.led import LED  # (torch: only when a pipeline is configured)

    known = {o.name for o in LED.options}
    unknown = sorted(set(params) - known - {"random_state"})
    if unknown:
        raise ConfigError(f"{where}: unknown LED option(s) {unknown} in [led]; see help(ledrec.LED)")
    if "checkpoint_dir" in params or "embeddings" in params:
        raise ConfigError(f"{where}: [led] checkpoint_dir and embeddings are the pipeline's own (its work folder)")
    if "variant" in params or "tuning" in params:
        raise ConfigError(f"{where}: [led] variant and tuning: the pipeline's variants key chooses them")
    LED(**params)  # type and range checks, ConfigError naming the option


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--led``: the value read as TOML (``dim=64``, ``loss="bpr"`` or ``loss=bpr``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--led {text!r}: expected KEY=VALUE, e.g. --led dim=64")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: a string
    return key.strip().replace("-", "_"), parsed
