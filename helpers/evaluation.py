"""Judging explanations: faithfulness curves, sanity checks, and one table of methods.

Shape glossary: B batch, L padded length, A = 21 channels, n residues of one peptide.

- *Deletion* and *insertion* curves (Petsiuk et al. 2018, for residues): remove (or add)
  residues in the order an explanation ranks them and track the logit. A faithful ranking
  makes the deletion curve fall fast (small area) and the insertion curve rise fast (large
  area). Both are coalition games (`helpers.perturbation`), so one batched call per curve.
- *Cascading randomisation* (Adebayo et al. 2018): re-initialise the model's layers from
  the top down; an explanation that barely changes does not depend on what the model learned.
- `explainers`: every per-residue method of the course behind one signature, with its cost
  in model calls, so chapters compare them on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import haiku as hk
import jax
import numpy as np

from helpers import attribution, perturbation, shapley, surrogate
from helpers.attribution import PredictFn

# The course CNN's modules from the output down, the order of cascading randomisation.
CNN_LAYERS_TOP_DOWN = (
    "hemolysis_cnn/logit",
    "hemolysis_cnn/dense1",
    "hemolysis_cnn/dense0",
    "hemolysis_cnn/~features/conv2",
    "hemolysis_cnn/~features/conv1",
    "hemolysis_cnn/~features/conv0",
)


# ----------------------------------------------------------------------------- orders and curves


def ranking(scores) -> np.ndarray:
    """Residue indices `[n]` from the highest score to the lowest (ties: earlier first)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"scores must be a non-empty [n] vector, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"scores contain NaN or infinity (first at residue {bad})")
    return np.argsort(-scores, kind="stable")


def _check_order(order, n: int) -> np.ndarray:
    order = np.asarray(order)
    if order.shape != (n,) or sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of the {n} residue indices 0..{n - 1}, got {order.tolist()}")
    return order


def curve_masks(order, kind: str) -> np.ndarray:
    """Coalitions `[n + 1, n]` (True = residue present): row k has the first k residues of
    `order` removed (`kind="deletion"`) or only they present (`"insertion"`)."""
    order = np.asarray(order)
    n = len(order)
    _check_order(order, n)
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    first_k = rank[None, :] < np.arange(n + 1)[:, None]  # [n + 1, n]: among the first k
    if kind == "deletion":
        return ~first_k
    if kind == "insertion":
        return first_k
    raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")


def faithfulness_curve(f: PredictFn, x, order, *, kind: str = "deletion", fill="padding", length: int | None = None) -> np.ndarray:
    """The logits `[n + 1]` of peptide `x [L, A]` as the residues are deleted (or inserted)
    one at a time in `order`; absent residues are replaced as in `perturbation.occlusion`
    (`fill="padding"`: masked in place; `"delete"` splices them out). One batched model call."""
    game = perturbation.game_for_fill(f, x, fill, length=length)
    return np.asarray(game(curve_masks(_check_order(order, game.n), kind)), dtype=float)


def curve_area(curve) -> float:
    """Area under a curve `[n + 1]` over the fraction of residues moved, 0 to 1 (trapezoid)."""
    c = np.asarray(curve, dtype=float)
    if c.ndim != 1 or len(c) < 2:
        raise ValueError(f"a curve needs at least 2 points, got shape {c.shape}")
    return float(np.trapezoid(c, dx=1.0 / (len(c) - 1)))


def normalised_area(curve, kind: str) -> float:
    """`curve_area` of a deletion (first point = full peptide) or insertion (last point =
    full peptide) curve rescaled so that the full peptide is 1 and the empty one 0: a
    deletion area near 0 and an insertion area near 1 are best."""
    c = np.asarray(curve, dtype=float)
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    if c.ndim != 1 or len(c) < 2:
        raise ValueError(f"a curve needs at least 2 points, got shape {c.shape}")
    full, empty = (c[0], c[-1]) if kind == "deletion" else (c[-1], c[0])
    if abs(full - empty) < 1e-6:
        raise ValueError("the full and the empty peptide give the same logit: the curve cannot be normalised; skip this peptide")
    return curve_area((c - empty) / (full - empty))


# ----------------------------------------------------------------------------- sanity checks


def randomise_layers(params: hk.Params, fresh: hk.Params, layers: Sequence[str]) -> hk.Params:
    """`params` with the modules named in `layers` replaced by those of `fresh` (the same
    model initialised from another key: the initial distribution, as Adebayo et al.)."""
    missing = [m for m in layers if m not in params or m not in fresh]
    if missing:
        raise ValueError(f"no module {missing[0]!r} in the parameters; modules: {sorted(params)}")
    return {m: (fresh[m] if m in layers else v) for m, v in params.items()}


def cascade(params: hk.Params, fresh: hk.Params, layers: Sequence[str] = CNN_LAYERS_TOP_DOWN) -> list[tuple[str, hk.Params]]:
    """Cascading randomisation: `[(name, params)]` with the first 1, 2, ... of `layers`
    (top down) re-initialised, each stage keeping the earlier stages' randomisation."""
    return [(layers[k - 1], randomise_layers(params, fresh, layers[:k])) for k in range(1, len(layers) + 1)]


# ----------------------------------------------------------------------------- the methods


class Method(NamedTuple):
    explain: Callable  # (x [L, A], key) -> scores [n] (higher = more evidence for the class)
    forward: Callable[[int], int]  # forward passes for a peptide of n residues
    backward: Callable[[int], int]  # gradient (forward + backward) passes
    signed: bool  # False: a magnitude (saliency), which cannot say "against"


def explainers(
    f: PredictFn,
    *,
    make_f: Callable[[Callable], PredictFn] | None = None,
    ig_steps: int = 64,
    smooth_samples: int = 50,
    smooth_sigma: float = 0.15,
    permutations: int = 64,
    kernel_samples: int = 512,
    lime_samples: int = 1000,
    length: int | None = None,
) -> dict[str, Method]:
    """Every per-residue method of the course for predict function `f`, with the settings
    of its chapter. `make_f(activation) -> f` (the course CNN: `lambda act:
    cnn.predict_fn(params, activation=act)`) adds DeepLIFT. Perturbation methods mask
    residues in place (padding fill); `length`: evaluate them on inputs cut to that many
    positions (as `perturbation.make_game`; one length for all peptides compiles once).
    A "random" method (a random order) is the control every method must beat."""

    def own(a, x):
        return np.asarray(attribution.per_residue(a, x))

    def saliency(x, key):
        g = np.asarray(attribution.saliency(f, x))
        return np.linalg.norm(g, axis=-1)[: attribution.num_residues(x)]

    methods = {
        "saliency": Method(saliency, lambda n: 0, lambda n: 1, False),
        "gradient × input": Method(lambda x, key: own(attribution.gradient_x_input(f, x), x), lambda n: 0, lambda n: 1, True),
        "integrated gradients": Method(
            lambda x, key: own(attribution.integrated_gradients(f, x, steps=ig_steps).attributions, x),
            lambda n: 2, lambda n: ig_steps + 1, True),
        "SmoothGrad": Method(
            lambda x, key: own(attribution.smoothgrad(f, x, key, n=smooth_samples, sigma=smooth_sigma), x),
            lambda n: 0, lambda n: smooth_samples, True),
    }
    if make_f is not None:
        dl = attribution.make_deeplift(make_f)
        methods["DeepLIFT"] = Method(lambda x, key: own(dl(x).attributions, x), lambda n: 0, lambda n: 2, True)
    methods.update({
        "occlusion": Method(lambda x, key: perturbation.occlusion(f, x, length=length), lambda n: n + 2, lambda n: 0, True),
        "Shapley (permutation)": Method(
            lambda x, key: shapley.shapley_permutation(f, x, key, n_permutations=permutations, baseline="padding",
                                                       length=length).values,
            lambda n: permutations * (n - 1) + 2, lambda n: 0, True),
        "KernelSHAP": Method(
            lambda x, key: shapley.kernel_shap(f, x, key, n_samples=kernel_samples, baseline="padding",
                                               length=length).values,
            lambda n: min(kernel_samples, 2**n - 2) + 2, lambda n: 0, True),
        "LIME": Method(
            lambda x, key: surrogate.lime(f, x, key, n_samples=lime_samples, length=length).coefficients,
            lambda n: lime_samples + 2, lambda n: 0, True),
        "random": Method(
            lambda x, key: np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()).random(attribution.num_residues(x)),
            lambda n: 0, lambda n: 0, False),
    })
    return methods
