"""The four training losses of the seed paper (§5.2), as plain functions of scores.

Notation: a batch of B users; each user u has positives (targets) P_u and, for the sampled losses,
N negatives drawn uniformly from the catalogue and shared by all of u's positives (§5.2). Positives are
given flat: ``pos_scores[k]`` is the score of the k-th positive, ``pos_rows[k]`` its user's row in the batch.

* Mult (Liang et al. 2018): full softmax, −Σ_{p∈P_u} log softmax(s_u)_p, mean over users.
* Mult-CSS (Botev et al. 2017, complementarity sum sampling): the softmax partition function
  Z = Σ_i exp(s_i) is estimated as Ẑ = exp(s_p) + (I − 1)/N · Σ_n exp(s_n); −Σ_p log(exp(s_p)/Ẑ), mean
  over users. (criteo/deepr's mask shape makes its N evaluate to 1; we use the estimator as published.)
* BPR (Rendle et al. 2009): −log σ(s_p − s_n), mean over the N negatives, mean over all positives.
* NS (negative sampling, Mikolov et al. 2013): −log σ(s_p) − Σ_n log(1 − σ(s_n)), mean over positives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSSES = ("mult", "mult-css", "bpr", "ns")


def mult_loss(logits: torch.Tensor, pos_rows: torch.Tensor, pos_items: torch.Tensor) -> torch.Tensor:
    """Full-softmax multinomial log-likelihood. logits: (B, I); positives flat (P,)."""
    log_z = torch.logsumexp(logits, dim=1)  # (B,)
    log_p = logits[pos_rows, pos_items] - log_z[pos_rows]  # (P,)
    return -log_p.sum() / logits.shape[0]


def mult_css_loss(
    pos_scores: torch.Tensor,
    pos_rows: torch.Tensor,
    neg_scores: torch.Tensor,
    n_items: int,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax with the CSS partition estimate. pos_scores: (P,); neg_scores: (B, N).

    ``log_q`` (broadcast to neg_scores): log-probabilities with which the negatives were drawn, when not
    uniformly; the estimate of the non-positive part of Z is then the importance-sampled 1/N · Σ_n exp(s_n)/q_n,
    which for q = 1/(I − 1) is CSS's (I − 1)/N · Σ_n exp(s_n)."""
    n_neg = neg_scores.shape[1]
    if log_q is None:
        # log Σ_n exp(s_n) + log((I − 1) / N): the sampled estimate of the non-positive part of Z, per user
        log_rest = torch.logsumexp(neg_scores, dim=1) + math.log((n_items - 1) / n_neg)  # (B,)
    else:
        log_rest = torch.logsumexp(neg_scores - log_q, dim=1) - math.log(n_neg)  # (B,)
    log_z = torch.logaddexp(pos_scores, log_rest[pos_rows])  # (P,)
    return -(pos_scores - log_z).sum() / neg_scores.shape[0]


def bpr_loss(pos_scores: torch.Tensor, pos_rows: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: mean over (positive, negative) pairs of −log σ(s_p − s_n)."""
    diff = pos_scores[:, None] - neg_scores[pos_rows]  # (P, N)
    return F.softplus(-diff).mean()  # −log σ(x) = softplus(−x)


def ns_loss(pos_scores: torch.Tensor, pos_rows: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Negative sampling: −log σ(s_p) − Σ_n log(1 − σ(s_n)), mean over positives."""
    neg_term = F.softplus(neg_scores).sum(dim=1)  # −Σ_n log(1 − σ(s_n)) = Σ_n softplus(s_n), (B,)
    return (F.softplus(-pos_scores) + neg_term[pos_rows]).mean()
