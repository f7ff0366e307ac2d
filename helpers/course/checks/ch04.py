"""Exercise checks of chapter 4, SmoothGrad: clip-and-renormalise and the noisy average (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution
from helpers import sequences as seqs_lib
from helpers.course.checks._common import PEPTIDES, CheckFailed, _models, _run


def check_clip_renormalise(student: Callable) -> str:
    """`student(x [..., L, A]) -> [..., L, A]`: each position clipped at 0 and divided by
    its sum; a position clipped to all zeros becomes uniform. Against
    `attribution.project_to_simplex_rows`."""
    rng = np.random.default_rng(0)
    one_hot = seqs_lib.encode_batch(PEPTIDES, length=30)
    cases = [(one_hot, "one-hot peptides (already on the simplex: unchanged)"),
             (one_hot + rng.normal(0, 0.15, one_hot.shape), "one-hot peptides plus noise"),
             (-np.abs(rng.normal(size=(4, 21))), "positions with every channel negative (uniform after clipping)")]
    for x, name in cases:
        x = np.asarray(x, np.float32)
        got = _run(student, jnp.asarray(x), what="your clip-and-renormalise")
        want = np.asarray(attribution.project_to_simplex_rows(jnp.asarray(x)))
        if got.shape != want.shape:
            raise CheckFailed(f"for {name} the output must keep the input's shape {want.shape}, got {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
            raise CheckFailed(f"for {name}, entry {i} should be {want[i]:.4f}, yours is {got[i]:.4f}: clip at 0, then "
                              "divide each position by its own sum (over the last axis); all zeros -> 1/21 each")
    return f"clip and renormalise: all {len(cases)} cases pass"


def check_smoothgrad(student: Callable) -> str:
    """`student(f, x [L, A], key, n, sigma) -> [L, A]`: the mean gradient over n copies
    x + N(0, sigma^2) on every entry (the paper's SmoothGrad, no projection). Cases: the
    linear model (every copy has the same gradient), sigma = 0 (the plain gradient), and
    the course CNN against `attribution.smoothgrad` with 4 times as many samples."""
    linear, weights, cnn = _models()
    x = jnp.asarray(seqs_lib.encode(PEPTIDES[1]))
    got = _run(student, linear, x, jax.random.PRNGKey(0), 16, 0.3, what="your SmoothGrad")
    if got.shape != x.shape:
        raise CheckFailed(f"SmoothGrad returns one value per input entry, shape {tuple(x.shape)} [L, A]; yours has {got.shape}")
    if np.abs(got - np.broadcast_to(weights, x.shape)).max() > 1e-5:
        raise CheckFailed("on the linear model every noisy copy has the same gradient (the weights), so SmoothGrad must "
                          "equal it: return the mean of the gradients, not of gradient x input or of the noisy inputs")
    got = _run(student, cnn, x, jax.random.PRNGKey(0), 4, 0.0, what="your SmoothGrad")
    want = np.asarray(jax.grad(lambda z: cnn(z[None])[0])(x))
    if np.abs(got - want).max() > 1e-5:
        raise CheckFailed("with sigma = 0 every copy is x itself, so SmoothGrad is the plain gradient; yours differs by "
                          f"{np.abs(got - want).max():.2g}")
    worst = 0.0
    for k, seq in enumerate(PEPTIDES):
        x = jnp.asarray(seqs_lib.encode(seq))
        got = _run(student, cnn, x, jax.random.PRNGKey(k), 1024, 0.15, what="your SmoothGrad")
        want = np.asarray(attribution.smoothgrad(cnn, x, jax.random.PRNGKey(100 + k), n=4096, sigma=0.15,
                                                 project=False, perturb_padding=True))
        err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        worst = max(worst, err)
        if err > 0.35:  # sampling alone: at most 0.21 seen over seeds; the plain gradient: 0.9 to 3.2
            raise CheckFailed(f"on the course CNN and {seq} your SmoothGrad (1024 samples, sigma 0.15) is {err:.0%} away "
                              "from the reference (4096 samples), more than sampling explains: add noise N(0, sigma^2) to "
                              "every entry (padding included) and average the gradients")
    return f"SmoothGrad: all {2 + len(PEPTIDES)} cases pass (largest relative distance to the reference {worst:.2f})"
