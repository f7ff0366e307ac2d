"""Exercise checks of chapter 6, occlusion: single residues and windows (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import PEPTIDES, CheckFailed, _models, _run, _where


def check_occlusion(student: Callable) -> str:
    """`student(f, x [L, A]) -> [n]`: for each residue, f(x) minus f with that residue
    masked in place (its row replaced by the padding row). Cases: a linear model (the
    drop is the residue's own term) and the course CNN against `perturbation.occlusion`."""
    from helpers import perturbation

    linear, weights, cnn = _models()
    for seq in PEPTIDES:
        x = jnp.asarray(seqs_lib.encode(seq))
        got = _run(student, linear, x, what="your occlusion")
        want = weights[np.asarray(x).argmax(-1)[: len(seq)]]  # each residue's own term
        if got.shape != want.shape:
            raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, your scores have shape {got.shape}")
        if np.abs(got - want).max() > 1e-5:
            raise CheckFailed(f"on a linear model deleting a residue removes exactly its term, but yours differs by "
                              f"{np.abs(got - want).max():.3g} at {_where(got - want, seq)}: replace the row by the "
                              "padding row (channel 0 set to 1), not by zeros")
        want = perturbation.occlusion(cnn, x)
        got = _run(student, cnn, x, what="your occlusion")
        if np.abs(got - want).max() > 1e-4:
            raise CheckFailed(f"on the course CNN yours differs from the reference by {np.abs(got - want).max():.3g} at "
                              f"{_where(got - want, seq)}")
    return f"occlusion: all {2 * len(PEPTIDES)} cases pass"


def check_window_occlusion(student: Callable) -> str:
    """`student(f, x [L, A], window) -> [n]`: each window of `window` consecutive residues
    masked in place (stride 1), and each residue's score the mean drop of the windows
    that cover it (Captum's convention). Cases: the linear model and the course CNN
    against `perturbation.occlusion`, windows 1, 3 and 5."""
    from helpers import perturbation

    linear, _, cnn = _models()
    for model, name in ((linear, "the linear model"), (cnn, "the course CNN")):
        for seq in PEPTIDES:
            x = jnp.asarray(seqs_lib.encode(seq))
            for window in (1, 3, 5):
                got = _run(student, model, x, window, what="your windowed occlusion")
                want = perturbation.occlusion(model, x, window=window)
                if got.shape != want.shape:
                    raise CheckFailed(f"one score per residue: {seq} has {len(seq)} residues, yours has shape {got.shape}")
                if np.abs(got - want).max() > 1e-4:
                    raise CheckFailed(f"on {name}, window {window}: your score for {_where(got - want, seq)} is off by "
                                      f"{np.abs(got - want).max():.3g}: average (not add) the drops of the windows "
                                      "covering each residue; the end residues are covered by fewer windows")
    return "windowed occlusion: all 18 cases pass"
