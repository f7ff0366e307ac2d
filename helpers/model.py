"""The hemolysis CNN in dm-haiku, and parameter files without pickle.

Shape glossary: B batch, L padded length, A = 21 one-hot channels (0 = padding),
C conv channels, F = 2 C + 20 + 1 head features.

Architecture (after the dmol-book XAI chapter, made length-independent):
  x [B, L, A] -> 3 x (Conv1D(C, k) -> (activation + 1) * mask -> max-pool p)
              -> [global max ; mean over residue windows]             [B, 2C]
  concat amino-acid fractions [B, 20] and length / 100 [B, 1]         [B, F]
  -> Dense(256) -> act -> Dense(64) -> act -> Dense(1)   (no biases)  [B] logits

The mask is m = sum of the 20 amino-acid channels (1 on a residue, 0 on padding), average-
pooled alongside the features for the deeper layers. Features are shifted to be >= 0 and
multiplied by the mask, so padding is exactly 0 and never wins a max: padding positions never
reach the pooled features, and the prediction does not depend on how much padding follows
the peptide. Every operation is continuous in the input and has no ties to break between
positions, which matters for the inputs attribution methods visit between one-hot points
(paths, noise). The all-zero input has m = 0 everywhere, all head features 0, and (the
dense layers have no biases, act(0) = 0) a logit of exactly 0: a root that later chapters
use as a baseline. The activation is a parameter so that the DeepLIFT chapter can swap in
one with a custom gradient.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from helpers import validation
from helpers.sequences import AMINO_ACIDS, KYTE_DOOLITTLE, NUM_CHANNELS

LENGTH_SCALE = 100.0  # the length feature is L / 100 residues
PRETRAINED_NAME = "hemolysis_cnn"


ACTIVATION_FLOOR = -1.0  # the activation must stay above this (tanh > -1, relu, gelu)


def _pool(v: jax.Array, size: int, kind: str) -> jax.Array:
    """Non-overlapping max- or average-pooling of `v [B, L, C]` over windows of `size`,
    padding at the end only, so windows always start at positions 0, size, 2 size, ...
    whatever L is (`padding="SAME"` would pad on both sides and shift them)."""
    extra = -v.shape[1] % size
    v = jnp.pad(v, ((0, 0), (0, extra), (0, 0)))
    # Full unbatched shapes over [L, C]: leading dimensions are batch, also under vmap.
    pool = hk.max_pool if kind == "max" else hk.avg_pool
    return pool(v, window_shape=(size, 1), strides=(size, 1), padding="VALID")


def smooth_max1(n: jax.Array) -> jax.Array:
    """`max(n, 1)` made once continuously differentiable: n for n >= 1, (n^2 + 1) / 2 below.

    For a peptide n >= 1 and it is exactly max(n, 1). On the path `alpha * x` that
    integrated gradients follows from the all-zero baseline, a plain `max` would put a kink
    into the amino-acid fractions at alpha = 1 / n, and quadrature converges only as
    1 / steps across a kink; with this C^1 version the trapezoid rule's completeness gap on
    the shipped model drops below 1e-3 of the logit at 256 steps (tests/test_attribution.py).
    """
    return jnp.where(n >= 1.0, n, 0.5 * (n * n + 1.0))


class HemolysisCNN(hk.Module):
    """1D CNN from one-hot peptides `[B, L, 21]` to hemolysis logits `[B]`."""

    def __init__(
        self,
        *,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        channels: int = 16,
        kernels: tuple[int, ...] = (5, 3, 3),
        pools: tuple[int, ...] = (4, 2, 2),
        hidden: tuple[int, ...] = (256, 64),
        name: str | None = "hemolysis_cnn",
    ):
        super().__init__(name=name)
        if len(kernels) != len(pools):
            raise ValueError(f"kernels {kernels} and pools {pools} must have the same length")
        validation.check_callable(activation, "activation")
        validation.check_int(channels, "channels", minimum=1)
        for what, values in (("kernels", kernels), ("pools", pools), ("hidden", hidden)):
            for v in values:
                validation.check_int(v, f"each of {what}", minimum=1)
        self.activation = activation
        self.channels = channels
        self.kernels = kernels
        self.pools = pools
        self.hidden = hidden

    def features(self, x: jax.Array) -> jax.Array:  # [B, L, A] -> [B, F]
        act = self.activation
        m = x[..., 1:].sum(axis=-1, keepdims=True)  # [B, L, 1]: 1 on residues, 0 on padding
        h = x
        for i, (k, p) in enumerate(zip(self.kernels, self.pools, strict=True)):
            # Shifted to be >= 0 and masked: padding is exactly 0 and can never win a max.
            h = (act(hk.Conv1D(self.channels, k, padding="SAME", name=f"conv{i}")(h)) - ACTIVATION_FLOOR) * m
            h = _pool(h, p, "max")
            m = _pool(m, p, "avg")  # share of residues in each window: no ties, no jumps
        counts = x[..., 1:].sum(axis=1)  # [B, 20]
        n = counts.sum(axis=-1, keepdims=True)  # [B, 1] residues
        # Global max as a max-pool over the whole length: same value as h.max(axis=1), but
        # at ties (all 0 at the all-zero input) the gradient goes to the first window, which
        # holds the most residues, instead of being averaged over all windows as jnp.max
        # does. That keeps the gradient at the all-zero baseline equal to the one-sided
        # derivative along the IG path, which the trapezoid rule evaluates.
        h_max = _pool(h, h.shape[1], "max")[:, 0, :]  # [B, C]
        h_mean = h.sum(axis=1) / smooth_max1(m.sum(axis=1))  # mean over windows holding residues
        fractions = counts / smooth_max1(n)  # exact for peptides, 0 at the all-zero input
        return jnp.concatenate([h_max, h_mean, fractions, n / LENGTH_SCALE], axis=-1)

    def __call__(self, x: jax.Array, *, from_features: bool = False) -> jax.Array:
        """`x [B, L, A]` -> logits `[B]`; with `from_features=True`, `x` is the features
        `[B, F]` and only the dense head runs (its modules must be created in `__call__`
        to keep their parameter names)."""
        h = x if from_features else self.features(x)
        for i, width in enumerate(self.hidden):
            h = self.activation(hk.Linear(width, with_bias=False, name=f"dense{i}")(h))
        return hk.Linear(1, with_bias=False, name="logit")(h)[..., 0]


def make_model(**config: Any) -> hk.Transformed:
    """`hk.Transformed` (no RNG) of `HemolysisCNN(**config)`: `init(key, x)`, `apply(params, x)`.

    Keyword arguments are those of `HemolysisCNN` (e.g. `activation=jax.nn.relu`).
    """

    def forward(x: jax.Array) -> jax.Array:
        if x.ndim != 3 or x.shape[-1] != NUM_CHANNELS:
            raise ValueError(f"expected one-hot input of shape [B, L, 21], got {x.shape}")
        return HemolysisCNN(**config)(x)

    return hk.without_apply_rng(hk.transform(forward))


def make_features(**config: Any) -> hk.Transformed:
    """`hk.Transformed` of the head's input features `[B, L, A] -> [B, F]`.

    It shares parameter names with `make_model(**config)`, so it applies with the same
    params (the dense weights are simply unused).
    """

    def features(x: jax.Array) -> jax.Array:
        return HemolysisCNN(**config).features(x)

    return hk.without_apply_rng(hk.transform(features))


def make_head(**config: Any) -> hk.Transformed:
    """`hk.Transformed` of the dense head `[B, F] -> [B]` logits, from the features that
    `make_features` computes. Its parameters are the dense entries of `make_model`'s
    (`head_params` picks them out), so the two compose to the full model."""

    def head(h: jax.Array) -> jax.Array:
        return HemolysisCNN(**config)(h, from_features=True)

    return hk.without_apply_rng(hk.transform(head))


def head_params(params: hk.Params) -> hk.Params:
    """The dense-layer entries of the full model's `params` (what `make_head` applies)."""
    out = {k: v for k, v in params.items() if k.rsplit("/", 1)[-1].startswith(("dense", "logit"))}
    if not out:
        raise ValueError(f"no dense layers among the parameters {sorted(params)}")
    return out


def predict_fn(params: hk.Params, **config: Any) -> Callable[[jax.Array], jax.Array]:
    """A jitted predict function `f(x[B, L, 21]) -> logits[B]` for fixed parameters.

    This is the model-agnostic interface every attribution method in the course takes. It is
    a `jax.tree_util.Partial` of the architecture's jitted apply over `params`: call it like
    any function; the explainers pass it into their jitted code as an argument, so that
    models of one architecture (cascading randomisation, other seeds) share one compiled
    program (`helpers.jitting`).
    """
    if not isinstance(params, Mapping) or not params:
        raise TypeError(f"params must be the model's haiku parameters (a dict of modules), got {type(params).__name__}")
    validation.check_finite_tree(params, "params")
    return jax.tree_util.Partial(_jitted_apply(**config), params)


def _jitted_apply(**config: Any) -> Callable:
    """`jax.jit(make_model(**config).apply)`, one per configuration (cached when the
    configuration's values are hashable, as activation functions are)."""
    try:
        return _cached_apply(tuple(sorted(config.items())))
    except TypeError:  # an unhashable value (a list): no cache
        return jax.jit(make_model(**config).apply)


@functools.lru_cache(maxsize=32)
def _cached_apply(config: tuple) -> Callable:
    return jax.jit(make_model(**dict(config)).apply)


def hydropathy_weights(scale: float = 10.0) -> jax.Array:
    """`[21]`: Kyte-Doolittle hydropathy per channel divided by `scale` (padding 0)."""
    validation.check_number(scale, "scale", nonzero=True)
    return jnp.array([0.0] + [KYTE_DOOLITTLE[a] for a in AMINO_ACIDS]) / scale


def hydrophobicity_model(scale: float = 10.0) -> Callable[[jax.Array], jax.Array]:
    """A linear "model" whose truth is known: `f(x[B, L, 21]) -> [B]`, the sum of the
    Kyte-Doolittle hydropathy values of the residues divided by `scale` (padding counts 0).

    Its gradient is `hydropathy_weights(scale)` at every position, so every attribution
    method has a closed form on it; chapters 2 and 3 use it as a check that cannot lie.
    """
    weights = hydropathy_weights(scale)
    return jax.jit(lambda xb: jnp.einsum("bla,a->b", xb, weights))


# ----------------------------------------------------------------------------- files


def save_params(path: str | Path, params: hk.Params) -> None:
    """Writes parameters to `.npz` as `module/name` arrays (no pickle)."""
    flat = {f"{mod}/{name}": np.asarray(v) for mod, d in params.items() for name, v in d.items()}
    np.savez(path, **flat)


def load_params(path: str | Path) -> hk.Params:
    """Reads parameters written by `save_params` (refuses pickled objects)."""
    params: dict[str, dict[str, jax.Array]] = {}
    with np.load(path, allow_pickle=False) as f:
        for key in f.files:
            mod, _, name = key.rpartition("/")
            if not mod:
                raise ValueError(f"{path}: key {key!r} is not of the form 'module/name'")
            params.setdefault(mod, {})[name] = jnp.asarray(f[key])
    return params


def pretrained_dir() -> Path:
    return Path(str(resources.files("helpers") / "pretrained"))


def load_pretrained(name: str = PRETRAINED_NAME) -> tuple[hk.Params, Mapping[str, Any]]:
    """The shipped trained weights and their record (metrics, config, the command that made
    them). Returns `(params, info)`."""
    d = pretrained_dir()
    npz, meta = d / f"{name}.npz", d / f"{name}.json"
    if not npz.exists():
        raise FileNotFoundError(
            f"no shipped weights {npz}; create them with `python -m helpers.training --out {d}`"
        )
    return load_params(npz), json.loads(meta.read_text())
