"""ledrec: the LED recommender (Lightweight Encoder-Decoder, Koch et al., Criteo) from events to serving.

The front door for Python users::

    import ledrec
    data = ledrec.Interactions.from_events(users, items)          # your own ids, any array-likes
    model = ledrec.LED().fit(data)                                # help(ledrec.LED): every parameter
    model.recommend_ids(["item-1", "item-7"], k=10)               # [(item id, score), ...], a new user

Names are imported when first used, so ``import ledrec`` stays cheap (the models import PyTorch).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name → the module that defines it
_EXPORTS = {
    **dict.fromkeys(
        ("LED", "EASE", "SVD", "MultVAE", "MultDAE", "Popularity", "Recommender", "MODELS"), "ledrec.models"
    ),
    **dict.fromkeys(("Interactions", "Vocabulary", "DataError"), "ledrec.data.interactions"),
    "read_dataset": "ledrec.data.readers",
    **dict.fromkeys(("ItemTable", "read_items"), "ledrec.data.items"),
    **dict.fromkeys(("pretrain", "PretrainConfig", "ItemEmbeddings"), "ledrec.pretrain"),
    **dict.fromkeys(("ServingModel", "from_model"), "ledrec.export.mips"),
    **dict.fromkeys(("Retriever", "RetrieverConfig"), "ledrec.serve.retriever"),
    "load_retriever": "ledrec.serve.loading",
    "ArtifactError": "ledrec.io",
    **dict.fromkeys(("ConfigError", "InputError"), "ledrec.errors"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ledrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
