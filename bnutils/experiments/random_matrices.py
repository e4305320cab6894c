"""Chapter 5 (Bjorck et al. 2018): a deep unnormalised network at initialisation as a product of random matrices.
Singular values of products of Gaussian matrices and their condition number vs the number of factors."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import validate


def random_product_singular_values(n: int = 200, factors: Sequence[int] = (1, 3, 5), seed: int = 0) -> dict[int, list]:
    """Singular values of W_k ... W_1 with W_i i.i.d. N(0, 1/n) n x n Gaussian matrices, for each k in factors."""
    validate.integer("n", n, minimum=2)
    validate.int_list("factors", factors)
    validate.integer("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    out, prod, done = {}, np.eye(n), 0
    for k in sorted(factors):
        while done < k:
            prod = rng.standard_normal((n, n)) / math.sqrt(n) @ prod
            done += 1
        out[k] = np.linalg.svd(prod, compute_uv=False).tolist()
    return out


def condition_vs_depth(n: int = 200, max_factors: int = 8, seeds: Sequence[int] = (0, 1, 2)) -> dict[str, list]:
    """The condition number (largest / smallest singular value) of a product of 1..max_factors Gaussian matrices,
    per seed (float64: values past ~1e15 are at the limit of the arithmetic)."""
    validate.integer("max_factors", max_factors)
    seeds = validate.seeds("seeds", list(seeds))
    ks = list(range(1, max_factors + 1))
    conds = []
    for s in seeds:
        sv = random_product_singular_values(n, ks, s)
        conds.append([sv[k][0] / sv[k][-1] for k in ks])
    return {"factors": ks, "cond": conds}
