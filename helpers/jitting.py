"""Compile once per architecture, not once per parameter set.

The course's explainers take a predict function `f(x [B, L, A]) -> logits [B]` and jit what
they do with it. A plain Python function can only be closed over, so every new `f` (the
same network with other weights: cascading randomisation, a shuffled-label twin, another
seed) is traced and compiled anew. `helpers.model.predict_fn` therefore returns a
`jax.tree_util.Partial`: a callable that is also a pytree, whose parameters enter a jitted
function as ordinary arguments, so one compiled program serves every parameter set of an
architecture. `per_model` gives both behaviours behind one call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax


def per_model(fn: Callable) -> Callable[[Callable], Callable]:
    """`get = per_model(fn)`; `get(f)(*args)` is `jax.jit(fn)(f, *args)`.

    A `jax.tree_util.Partial` `f` is passed as a jit argument: its wrapped function is part
    of the compiled program's key, its arguments (the parameters) are not, so other
    parameters of the same shapes reuse the compiled code. Any other callable is closed over
    and compiled once per `f` (the last 64 are kept)."""
    shared = jax.jit(fn)

    @functools.lru_cache(maxsize=64)
    def closed(f):
        return jax.jit(functools.partial(fn, f))

    def get(f: Callable) -> Callable:
        if isinstance(f, jax.tree_util.Partial):
            return functools.partial(shared, f)
        return closed(f)

    return get
