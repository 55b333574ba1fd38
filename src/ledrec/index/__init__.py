"""Top-k retrieval over exported item vectors: an exact index (the test oracle, and the right choice for
small catalogues) and approximate ones (HNSW graphs from hnswlib, faiss and usearch), behind one tiny API:
``build_index(kind, vectors) → index``, ``index.search(queries, k) → (positions, scores)``."""

from __future__ import annotations

from ledrec.index.base import FORMS, Index, build_index, index_kinds
from ledrec.index.exact import ExactIndex

__all__ = ["FORMS", "ExactIndex", "Index", "build_index", "index_kinds"]
