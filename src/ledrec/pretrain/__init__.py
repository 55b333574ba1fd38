"""Pre-training: co-occurrence → PMI → randomized SVD → item embeddings (seed paper §4.1, Algorithm 1)."""

from ledrec.pretrain.dataset import pretrain_dataset
from ledrec.pretrain.embeddings import ItemEmbeddings, PretrainConfig, pretrain

__all__ = ["ItemEmbeddings", "PretrainConfig", "pretrain", "pretrain_dataset"]
