"""Exercise checks of chapter 4, SmoothGrad: clip-and-renormalise and the noisy average
(convention: `_common`; the student's function runs on every case before any expected value
is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng


def check_clip_renormalise(student: Callable, *, seed: int | None = None) -> str:
    """`student(x [..., L, A]) -> [..., L, A]`: each position clipped at 0 and divided by
    its sum; a position clipped to all zeros becomes uniform. Against
    `attribution.project_to_simplex_rows` (off limits while yours runs)."""
    rng = _rng(seed)
    one_hot = seqs_lib.encode_batch(_peptides(seed), length=30)
    names = ["one-hot peptides (already on the simplex: unchanged)", "one-hot peptides plus noise",
             "positions with every channel negative (uniform after clipping)"]
    cases = [np.asarray(c, np.float32) for c in (one_hot, one_hot + rng.normal(0, 0.15, one_hot.shape),
                                                 -np.abs(rng.normal(size=(4, 21))))]
    outs = _collect(student, [(jnp.asarray(x),) for x in cases], what="your clip-and-renormalise",
                    forbidden=(attribution.project_to_simplex_rows,))
    for x, got, name in zip(cases, outs, names, strict=True):
        want = np.asarray(attribution.project_to_simplex_rows(jnp.asarray(x)))
        if got.shape != want.shape:
            raise CheckFailed(f"for {name} the output must keep the input's shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            sums = got.sum(-1)
            what = ("some positions do not sum to 1 (off by up to {:.3g})".format(np.abs(sums - 1).max())
                    if np.abs(sums - 1).max() > 1e-5 else f"entries are off by up to {np.abs(got - want).max():.3g}")
            raise CheckFailed(f"for {name} {what}: clip at 0, then divide each position by its own sum (over the "
                              "last axis); all zeros -> 1/21 each")
    return f"clip and renormalise: all {len(cases)} cases pass"


def check_smoothgrad(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A], key, n, sigma) -> [L, A]`: the mean gradient over n copies
    x + N(0, sigma^2) on every entry (the paper's SmoothGrad, no projection). Cases: the
    linear model (every copy has the same gradient), sigma = 0 (the plain gradient), and
    the course CNN against `attribution.smoothgrad` (off limits while yours runs) with 4
    times as many samples."""
    linear, weights, cnn = _models(seed)
    peptides = _peptides(seed)
    k0 = 0 if seed is None else int(_rng(seed, 3).integers(1, 2**20))
    x1 = jnp.asarray(seqs_lib.encode(peptides[1]))
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    calls = [(linear, x1, jax.random.PRNGKey(k0), 16, 0.3), (cnn, x1, jax.random.PRNGKey(k0), 4, 0.0)]
    calls += [(cnn, x, jax.random.PRNGKey(k0 + k), 1024, 0.15) for k, x in enumerate(xs)]
    outs = _collect(student, calls, what="your SmoothGrad", forbidden=(attribution.smoothgrad,))
    for got in outs:
        if got.shape != x1.shape:
            raise CheckFailed(f"SmoothGrad returns one value per input entry, shape {tuple(x1.shape)} [L, A]; yours has {got.shape}")
    if np.abs(outs[0] - np.broadcast_to(weights, x1.shape)).max() > 1e-5:
        raise CheckFailed("on the linear model every noisy copy has the same gradient (the weights), so SmoothGrad must "
                          "equal it: return the mean of the gradients, not of gradient x input or of the noisy inputs")
    want = np.asarray(jax.grad(lambda z: cnn(z[None])[0])(x1))
    if np.abs(outs[1] - want).max() > 1e-5:
        raise CheckFailed("with sigma = 0 every copy is x itself, so SmoothGrad is the plain gradient; yours differs by "
                          f"{np.abs(outs[1] - want).max():.2g}")
    worst = 0.0
    for k, (seq, x, got) in enumerate(zip(peptides, xs, outs[2:], strict=True)):
        want = np.asarray(attribution.smoothgrad(cnn, x, jax.random.PRNGKey(100 + k0 + k), n=4096, sigma=0.15,
                                                 project=False, perturb_padding=True))
        err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        worst = max(worst, err)
        if err > 0.35:  # sampling alone: at most 0.21 seen over seeds; the plain gradient: 0.9 to 3.2
            raise CheckFailed(f"on the course CNN and {seq} your SmoothGrad (1024 samples, sigma 0.15) is {err:.0%} away "
                              "from the reference (4096 samples), more than sampling explains: add noise N(0, sigma^2) to "
                              "every entry (padding included) and average the gradients")
    return f"SmoothGrad: all {len(calls)} cases pass (largest relative distance to the reference {worst:.2f})"
