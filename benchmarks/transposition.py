"""The transposition trick of project-mode LED (seed paper §5.1), measured.

Project mode scores s = ⟨P u, P v_i⟩ + b_i. Naively P is applied to every item vector each step
(I·d² multiply-adds); with the trick, q = (PᵀP)u is computed once per user (B·d²) and scored against the
frozen vectors. This times one training step (forward + backward of the Mult loss) both ways on random
data, reports the median of several steps, and checks that both give the same scores.

Usage: .venv/bin/python benchmarks/transposition.py [--items 40000] [--dim 256] [--batch 512] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ledrec.models.led import LEDNet
from ledrec.models.losses import mult_loss


def step_seconds(net: LEDNet, items, offsets, pos_rows, pos_items, naive: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first step warms up
        net.zero_grad(set_to_none=True)
        start = time.perf_counter()
        user = net.encode(items, offsets)
        logits = net.naive_projected_scores(user) if naive else net.score_all(net.query(user))
        mult_loss(logits, pos_rows, pos_items).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=40_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--history", type=int, default=30, help="items per user")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.items, args.dim)).astype(np.float32) / np.sqrt(args.dim)
    net = LEDNet(args.items, args.dim, vectors, tuning="project")
    with torch.no_grad():
        net.projection.add_(0.01 * torch.randn(args.dim, args.dim))
    items = torch.from_numpy(rng.integers(0, args.items, args.batch * args.history))
    offsets = torch.arange(0, args.batch * args.history, args.history)
    pos_rows = torch.arange(args.batch).repeat_interleave(args.history)
    with torch.no_grad():
        user = net.encode(items, offsets)
        diff = (net.score_all(net.query(user)) - net.naive_projected_scores(user)).abs().max().item()
    naive = step_seconds(net, items, offsets, pos_rows, items, True, args.repeats)
    trick = step_seconds(net, items, offsets, pos_rows, items, False, args.repeats)
    print(f"items={args.items} dim={args.dim} batch={args.batch} threads={torch.get_num_threads()}")
    print(f"max |score difference| = {diff:.2e}")
    print(f"naive projection: {naive * 1000:.1f} ms/step (median of {args.repeats})")
    print(f"transposition trick: {trick * 1000:.1f} ms/step (median of {args.repeats})")
    print(f"speed-up: {naive / trick:.2f}x")


if __name__ == "__main__":
    main()
