"""Exercise checks of chapter 6, occlusion: single residues and windows (convention:
`_common`; the student's function runs on every case before any expected value is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _hint, _models, _peptides, _rng, _where


def _padded_linear(weights: np.ndarray, seed: int | None):
    """The linear model with a non-zero weight on the padding channel (0.5, or random for a
    grading seed): masking a residue with the padding row then differs from zeroing it."""
    import jax

    w = np.array(weights, float)
    w[0] = 0.5 if seed is None else float(_rng(seed, 6).uniform(0.3, 1.0)) * (1 if _rng(seed, 7).random() < 0.5 else -1)
    wj = jnp.asarray(w, jnp.float32)
    return jax.jit(lambda xb: jnp.einsum("bla,a->b", xb, wj)), np.asarray(wj, float)


def check_occlusion(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A]) -> [n]`: for each residue, f(x) minus f with that residue
    masked in place (its row replaced by the padding row). Cases: a linear model whose
    padding channel has a non-zero weight (the drop is the residue's own term minus the
    padding's, so a zero fill is caught) and the course CNN against `perturbation.occlusion`
    (off limits while yours runs, as are `make_game` and `game_for_fill`)."""
    from helpers import perturbation

    linear, weights, cnn = _models(seed)
    linear, weights = _padded_linear(weights, seed)
    peptides = _peptides(seed)
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    outs = _collect(student, [(m, x) for x in xs for m in (linear, cnn)], what="your occlusion",
                    forbidden=(perturbation.occlusion, perturbation.make_game, perturbation.game_for_fill))
    for k, (seq, x) in enumerate(zip(peptides, xs, strict=True)):
        got = outs[2 * k]
        own = weights[np.asarray(x).argmax(-1)[: len(seq)]]
        want = own - weights[0]  # each residue's own term, replaced by the padding channel's
        if got.shape != want.shape or outs[2 * k + 1].shape != want.shape:
            raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, your scores have shape {got.shape}")
        if np.abs(got - want).max() > 1e-4 * max(1.0, np.abs(want).max()):  # float32 (jnp) differences of sums
            if np.abs(got - own).max() <= 1e-4 * max(1.0, np.abs(own).max()):
                hint = ("; yours matches filling with zeros: on this model the padding channel has weight "
                        f"{weights[0]:.2f}, so replace the row by the padding row (channel 0 set to 1), not by zeros")
            else:
                hint = _hint(got, want, items="residues") or ": replace the row by the padding row (channel 0 set to 1)"
            raise CheckFailed(f"on a linear model deleting a residue swaps its term for the padding channel's, but yours "
                              f"differs by {np.abs(got - want).max():.3g} at {_where(got - want, seq)}{hint}")
        got = outs[2 * k + 1]
        want = perturbation.occlusion(cnn, x)
        if np.abs(got - want).max() > 1e-4:
            raise CheckFailed(f"on the course CNN yours is off by {np.abs(got - want).max():.3g} at "
                              f"{_where(got - want, seq)}{_hint(got, want, items='residues')}")
    return f"occlusion: all {2 * len(peptides)} cases pass"


def check_window_occlusion(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A], window) -> [n]`: each window of `window` consecutive residues
    masked in place (stride 1), and each residue's score the mean drop of the windows
    that cover it (Captum's convention). Cases: the linear model and the course CNN
    against `perturbation.occlusion` (off limits while yours runs), windows 1, 3 and 5."""
    from helpers import perturbation

    linear, _, cnn = _models(seed)
    peptides = _peptides(seed)
    windows = (1, 3, 5) if seed is None else (1, 3, int(_rng(seed).integers(4, 8)))
    cases = [(model, name, seq, jnp.asarray(seqs_lib.encode(seq)), window)
             for model, name in ((linear, "the linear model"), (cnn, "the course CNN"))
             for seq in peptides for window in windows]
    outs = _collect(student, [(m, x, w) for m, _, _, x, w in cases], what="your windowed occlusion",
                    forbidden=(perturbation.occlusion, perturbation.make_game, perturbation.game_for_fill))
    for (model, name, seq, x, window), got in zip(cases, outs, strict=True):
        want = perturbation.occlusion(model, x, window=window)
        if got.shape != want.shape:
            raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, yours has shape {got.shape}")
        if np.abs(got - want).max() > 1e-4:
            raise CheckFailed(f"on {name}, window {window}: your score for {_where(got - want, seq)} is off by "
                              f"{np.abs(got - want).max():.3g}: average (not add) the drops of the windows "
                              "covering each residue; the end residues are covered by fewer windows")
    return f"windowed occlusion: all {len(cases)} cases pass"
