"""The map's t-SNE, run as a process of its own (``python -m ledrec.look.project IN.npy OUT.npy SEED``):
scikit-learn's t-SNE holds the interpreter for seconds at a time, and in the server's process that stalled
every page while it ran (a Figure 8 page took 7 s instead of 40 ms); in a child process, at a lower
priority, the pages do not notice it. Arrays travel as ``.npy`` files (no pickle)."""

from __future__ import annotations

import os
import sys

import numpy as np


def tsne(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) t-SNE of the rows of ``x`` (cosine distances), after PCA to at most 50 dimensions (t-SNE's
    usual first step: it cuts the neighbour search without moving the neighbours)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if len(x) < 5:
        return np.zeros((len(x), 2))
    if x.shape[1] > 50 and len(x) > 50:
        x = PCA(50, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine").fit_transform(x)
    return np.asarray(xy, dtype=np.float64)


def main(argv: list[str]) -> int:
    source, target, seed = argv[0], argv[1], int(argv[2])
    os.nice(10)  # below the server that waits for it: the pages keep their speed
    np.save(target, tsne(np.load(source, allow_pickle=False), seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
