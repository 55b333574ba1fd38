"""From what a user types after ``--data`` to data: a dataset folder or file (:func:`read_dataset`), a
folder written by ``ledrec prepare``, or ``synthetic[:key=value,…]`` generated on the fly; and with a
protocol applied (:func:`load_prepared`). Every command that reads data starts here."""

from __future__ import annotations

from typing import Any

from ledrec.data.interactions import DataError
from ledrec.data.readers import Dataset, read_dataset
from ledrec.data.splits import PreparedData, is_prepared, prepare
from ledrec.data.synthetic import SyntheticConfig, generate

SYNTHETIC = "synthetic"


def load_prepared(
    data: str,
    protocol: str,
    *,
    seed: int = 0,
    format: str | None = None,
    feedback: list[str] | None = None,
    protocol_options: dict[str, Any] | None = None,
) -> PreparedData:
    """Data path → protocol applied. Accepts a prepared-dataset folder, ``synthetic[:key=value,…]``, or
    any dataset :func:`read_dataset` understands."""
    if is_prepared(data):
        prepared = PreparedData.load(data)
        if prepared.protocol != protocol:
            raise DataError(f"{data} was prepared with protocol {prepared.protocol!r}, not {protocol!r}")
        return prepared
    return prepare(load_dataset(data, format), protocol, seed=seed, feedback=feedback, **(protocol_options or {}))


def load_dataset(spec: str, format: str | None = None) -> Dataset:
    if spec == SYNTHETIC or spec.startswith(SYNTHETIC + ":"):
        cfg = parse_synthetic_spec(spec)
        return Dataset(f"synthetic(seed={cfg.seed})", "synthetic", spec, {"all": generate(cfg)})
    return read_dataset(spec, format)


def describe(dataset: Dataset | str, format: str | None = None) -> dict[str, Any]:
    """What ``ledrec info`` prints: the dataset's name, reader, path, user and item counts, and per part its
    events, events per feedback type, users and items with events, and which optional columns it has.
    ``dataset``: a :class:`Dataset`, or what :func:`load_dataset` reads (``format`` forces its reader)."""
    ds = load_dataset(dataset, format) if isinstance(dataset, str) else dataset
    parts = {
        name: {
            "events": len(part),
            "feedback": part.feedback_counts(),
            "users_with_events": len(set(part.user.tolist())),
            "items_with_events": len(set(part.item.tolist())),
            "timestamps": part.timestamp is not None,
            "ratings": part.rating is not None,
            "partitions": None if part.partitions is None else len(part.partitions),
        }
        for name, part in ds.parts.items()
    }
    return {
        "name": ds.name,
        "format": ds.format,
        "path": ds.path,
        "users": len(ds.users),
        "items": len(ds.items),
        "parts": parts,
    }


def parse_synthetic_spec(spec: str) -> SyntheticConfig:
    """``synthetic`` or ``synthetic:n_users=20000,n_items=5000,seed=1`` → a generator config."""
    _, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    fields = SyntheticConfig.__dataclass_fields__
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in fields:
            raise DataError(f"bad synthetic option {part!r}; known: {', '.join(fields)}")
        kwargs[key] = type(getattr(SyntheticConfig(), key))(value)
    return SyntheticConfig(**kwargs)
