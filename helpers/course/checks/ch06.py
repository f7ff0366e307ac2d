"""Exercise checks of chapter 6, occlusion: single residues and windows (convention:
`_common`; the student's function runs on every case before any expected value is computed)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _collect, _models, _peptides, _rng, _where


def check_occlusion(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A]) -> [n]`: for each residue, f(x) minus f with that residue
    masked in place (its row replaced by the padding row). Cases: a linear model (the
    drop is the residue's own term) and the course CNN against `perturbation.occlusion`
    (off limits while yours runs, as are `make_game` and `game_for_fill`)."""
    from helpers import perturbation

    linear, weights, cnn = _models(seed)
    peptides = _peptides(seed)
    xs = [jnp.asarray(seqs_lib.encode(seq)) for seq in peptides]
    outs = _collect(student, [(m, x) for x in xs for m in (linear, cnn)], what="your occlusion",
                    forbidden=(perturbation.occlusion, perturbation.make_game, perturbation.game_for_fill))
    for k, (seq, x) in enumerate(zip(peptides, xs, strict=True)):
        got = outs[2 * k]
        want = weights[np.asarray(x).argmax(-1)[: len(seq)]]  # each residue's own term
        if got.shape != want.shape or outs[2 * k + 1].shape != want.shape:
            raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, your scores have shape {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            raise CheckFailed(f"on a linear model deleting a residue removes exactly its term, but yours differs by "
                              f"{np.abs(got - want).max():.3g} at {_where(got - want, seq)}: replace the row by the "
                              "padding row (channel 0 set to 1), not by zeros")
        got = outs[2 * k + 1]
        want = perturbation.occlusion(cnn, x)
        if np.abs(got - want).max() > 1e-4:
            raise CheckFailed(f"on the course CNN yours is off by {np.abs(got - want).max():.3g} at "
                              f"{_where(got - want, seq)}")
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
