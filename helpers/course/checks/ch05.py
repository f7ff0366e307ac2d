"""Exercise checks of chapter 5, DeepLIFT: rescale multipliers and a dense network
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers.course.checks._common import CheckFailed, _collect, _rng


def _reference_multipliers(act: Callable, z: jax.Array, z0: jax.Array) -> np.ndarray:
    """The rescale multipliers of `attribution.rescale_activation` (one backward pass)."""
    paired = attribution.rescale_activation(act)
    _, pullback = jax.vjp(paired, jnp.concatenate([z, z0]))
    return np.asarray(pullback(jnp.ones((2 * len(z),) + z.shape[1:], z.dtype))[0][: len(z)])


def check_rescale_multiplier(student: Callable, *, seed: int | None = None) -> str:
    """`student(act, z [...], z0 [...]) -> [...]`: DeepLIFT's rescale multiplier of each
    unit, (act(z) - act(z0)) / (z - z0), and act'(z) where z and z0 (nearly) coincide.
    Cases: tanh and ReLU on random pairs, equal pairs, and pairs 1e-9 apart;
    `attribution.rescale_activation` is off limits while yours runs."""
    rng = _rng(seed)
    z = jnp.asarray(rng.normal(0, 2, (64,)), jnp.float32)
    z0 = jnp.asarray(rng.normal(0, 2, (64,)), jnp.float32)
    relu_cases = jnp.array([-1.0, 2.0, -3.0]), jnp.array([1.0, 1.0, -1.0])  # secants 0.5, 1, 0
    cases = [(jnp.tanh, z, z0, "tanh on random pairs"), (jax.nn.relu, z, z0, "ReLU on random pairs"),
             (jax.nn.relu, *relu_cases, "ReLU from -1 to 1, 1 to 2 and -1 to -3"),
             (jnp.tanh, z, z, "tanh with z = z0 (the secant is 0 / 0: use the derivative)"),
             (jnp.tanh, z, z + 1e-9, "tanh with z0 1e-9 from z")]
    outs = _collect(student, [c[:3] for c in cases], what="your rescale multiplier",
                    forbidden=(attribution.rescale_activation,))
    for (act, a, b, name), got in zip(cases, outs, strict=True):
        want = _reference_multipliers(act, a, b)
        if got.shape != want.shape:
            raise CheckFailed(f"one multiplier per unit: for {name} expected shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-4:
            i = int(np.argmax(np.abs(got - want)))
            raise CheckFailed(f"for {name}, unit {i} (z = {float(a[i]):.3g}, z0 = {float(b[i]):.3g}) is off by "
                              f"{abs(got[i] - want[i]):.3g}: the secant (act(z) - act(z0)) / (z - z0), act'(z) where they meet")
    return f"rescale multipliers: all {len(cases)} cases pass"


def check_deeplift_dense(student: Callable, *, seed: int | None = None) -> str:
    """`student(w1 [D, H], w2 [H], x [D], x0 [D]) -> [D]`: DeepLIFT (rescale rule) of
    y = tanh(x @ w1) @ w2 from reference x0. Cases: random networks; the attributions
    must add up to y(x) - y(x0) (summation to delta, exact here) and match the rescale
    rule of `attribution.rescale_activation`."""
    k0 = 0 if seed is None else int(_rng(seed, 3).integers(1, 2**20))
    nets = []
    for k, (d, h) in enumerate(((3, 2), (8, 16), (21, 32))):
        keys = jax.random.split(jax.random.PRNGKey(k0 + k), 4)
        nets.append((jax.random.normal(keys[0], (d, h)), jax.random.normal(keys[1], (h,)),
                     jax.random.normal(keys[2], (d,)), jax.random.normal(keys[3], (d,))))
    outs = _collect(student, nets, what="your DeepLIFT", forbidden=(attribution.rescale_activation,))
    for (w1, w2, x, x0), got in zip(nets, outs, strict=True):
        d, h = w1.shape
        if got.shape != (d,):
            raise CheckFailed(f"one attribution per input: expected shape ({d},), got {got.shape}")
        delta = float((jnp.tanh(x @ w1) - jnp.tanh(x0 @ w1)) @ w2)
        if abs(got.sum() - delta) > 1e-4 * max(1.0, abs(delta)):
            raise CheckFailed(f"on a {d}-{h}-1 tanh network your attributions' sum misses y(x) - y(x0) by "
                              f"{abs(got.sum() - delta):.3g}: with secant multipliers the sum is exact (gradients at x or x0 are not)")
        m = _reference_multipliers(jnp.tanh, (x @ w1)[None], (x0 @ w1)[None])[0]
        want = np.asarray((x - x0) * (w1 @ (m * w2)))
        if np.abs(got - want).max() > 1e-4 * max(1.0, np.abs(want).max()):
            raise CheckFailed(f"on a {d}-{h}-1 tanh network your attributions sum correctly but are off by "
                              f"{np.abs(got - want).max():.3g}: multiply (x - x0) by w1 @ (m * w2), m the hidden units' secants")
    return "DeepLIFT on dense tanh networks: all 3 pass (summation to delta and the rescale rule)"
