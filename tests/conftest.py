"""Fixtures shared by several test modules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import attribution as A
from helpers import data as D
from helpers import model as M


@pytest.fixture(scope="session")
def cnn():
    """(params, f) of the shipped CNN."""
    params, _ = M.load_pretrained()
    return params, M.predict_fn(params)


@pytest.fixture(scope="session")
def additive():
    """(W [L, 21], f) of the additive model f(x) = sum_l sum_a W[l, a] x[l, a] over L = 24
    positions: one term per position, so every perturbation method has a closed form."""
    w = jax.random.normal(jax.random.PRNGKey(3), (24, 21))
    return np.asarray(w, dtype=np.float64), jax.jit(lambda xb: jnp.einsum("bla,la->b", xb, w))


@pytest.fixture(scope="session")
def additive_terms(additive):
    """`terms(x [L, A], refs [L, A] or [M, L, A]) -> [n]`: each residue's term of the additive
    model minus its mean over the references. This is, exactly, window-1 occlusion with those
    references as the fill, the Shapley value of the game with them, and (for a single
    reference) what LIME's switches must recover."""
    w, _ = additive

    def terms(x, refs):
        x, refs = np.asarray(x), np.asarray(refs).reshape((-1,) + np.shape(x))
        return ((x[None] - refs) * w).sum(axis=2).mean(axis=0)[: A.num_residues(x)]

    return terms


@pytest.fixture(scope="session")
def background_peptides():
    """64 training peptides `[64, 190, 21]`, drawn with a fixed seed."""
    train = D.load_split("train")
    idx = np.random.default_rng(0).choice(len(train.y), 64, replace=False)
    return train.x[idx]
