"""How stable is the randomized SVD's top-d subspace? Two single-machine runs that differ only in the seed of
the random test matrix Ω, compared by the cosines of their principal angles, for several power-iteration
counts. It separates "Spark and local disagree" from "two randomized SVDs disagree".

    .venv/bin/python benchmarks/rsvd_seed_agreement.py --data ../shared/data/gowalla-lightgcn --n-iter 5,10,20,40
    .venv/bin/python benchmarks/rsvd_seed_agreement.py --data ../shared/data/taobao-multibehavior \\
        --feedback view --n-iter 5,20
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from ledrec.data.load import load_prepared
from ledrec.pretrain.cooccurrence import cooccurrence
from ledrec.pretrain.pmi import pmi
from ledrec.pretrain.spark import principal_angle_cosines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--feedback", default=None, help="event types of the training matrix (e.g. view)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--n-iter", default="5,10,20", help="comma-separated power-iteration counts")
    args = p.parse_args()
    data = load_prepared(args.data, "bars", seed=0, feedback=args.feedback.split(",") if args.feedback else None)
    M = sp.csr_matrix(pmi(cooccurrence(data.fit_test)), dtype=np.float32)  # the PMI matrix `ledrec pretrain` uses
    rows = []
    for n_iter in (int(x) for x in args.n_iter.split(",")):
        start = time.perf_counter()
        U = [randomized_svd(M, args.dim, n_oversamples=20, n_iter=n_iter, random_state=s)[0] for s in (0, 1)]
        cos = principal_angle_cosines(U[0], U[1])
        rows.append(
            {
                "n_iter": n_iter,
                "mean_cos": round(float(cos.mean()), 4),
                "min_cos": round(float(cos.min()), 4),
                "s_per_svd": round((time.perf_counter() - start) / 2, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"data": args.data, "items": M.shape[0], "pmi_nnz": int(M.nnz), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
