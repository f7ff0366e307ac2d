"""The hemolysis CNN in dm-haiku, and parameter files without pickle.

Shape glossary: B batch, L padded length, A = 21 one-hot channels (0 = padding),
C conv channels, F = 2 C + 20 + 1 head features.

Architecture (after the dmol-book XAI chapter, made length-independent):
  x [B, L, A] -> 3 x (Conv1D(C, k) -> activation -> mask -> masked max-pool p)
              -> [global masked max ; global masked mean]             [B, 2C]
  concat amino-acid fractions [B, 20] and length / 100 [B, 1]         [B, F]
  -> Dense(256) -> act -> Dense(64) -> act -> Dense(1)   (no biases)  [B] logits

The mask is m = sum of the 20 amino-acid channels (1 on a residue, 0 on padding), so
padding positions never reach the pooled features, and the prediction does not depend on
how much padding follows the peptide. The all-zero input has m = 0 everywhere, all head
features 0, and (the dense layers have no biases, act(0) = 0) a logit of exactly 0: a root
that later chapters use as a baseline. The activation is a parameter so that the
DeepLIFT chapter can swap in one with a custom gradient.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from helpers.sequences import NUM_CHANNELS

LENGTH_SCALE = 100.0  # the length feature is L / 100 residues
PRETRAINED_NAME = "hemolysis_cnn"


MASK_OFFSET = 2.0  # must exceed -min(activation): tanh >= -1, relu >= 0, gelu > -0.17


def _masked_max_pool(h: jax.Array, m: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """Max-pools `h [B, L, C]` over windows of `size`, ignoring positions where the mask
    `m [B, L, 1]` is 0 (a window of padding only gives 0). Returns pooled h and pooled m,
    `[B, ceil(L / size), .]`.

    Masked positions are pushed down by `MASK_OFFSET * (1 - m)` rather than set to -inf, so
    the output is *continuous* in m: for one-hot peptides (m in {0, 1}) it is the exact
    masked maximum, and for the in-between inputs that attribution methods visit (paths,
    noise) it does not jump. The input is padded at the end only, so windows always start
    at positions 0, size, 2 size, ... whatever L is (`padding="SAME"` would shift them).
    """
    extra = -h.shape[1] % size
    h = jnp.pad(h, ((0, 0), (0, extra), (0, 0)))
    m = jnp.pad(m, ((0, 0), (0, extra), (0, 0)))
    # Full unbatched shapes over [L, C]: leading dimensions are batch, also under vmap.
    pool = dict(window_shape=(size, 1), strides=(size, 1), padding="VALID")
    pooled = hk.max_pool(h - MASK_OFFSET * (1.0 - m), **pool)
    m = hk.max_pool(m, **pool)
    return pooled + MASK_OFFSET * (1.0 - m), m


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
        self.activation = activation
        self.channels = channels
        self.kernels = kernels
        self.pools = pools
        self.hidden = hidden

    def features(self, x: jax.Array) -> jax.Array:  # [B, L, A] -> [B, F]
        act = self.activation
        m = x[..., 1:].sum(axis=-1, keepdims=True)  # [B, L, 1]
        h = x
        for i, (k, p) in enumerate(zip(self.kernels, self.pools)):
            h = act(hk.Conv1D(self.channels, k, padding="SAME", name=f"conv{i}")(h)) * m
            h, m = _masked_max_pool(h, m, p)
        # Global masked max and mean over the remaining positions, continuous in m like
        # the pooling; for peptides, the max and mean over the positions holding residues.
        h_max = (h - MASK_OFFSET * (1.0 - m)).max(axis=1) + MASK_OFFSET * (1.0 - m.max(axis=1))
        h_mean = h.sum(axis=1) / smooth_max1(m.sum(axis=1))
        counts = x[..., 1:].sum(axis=1)  # [B, 20]
        n = counts.sum(axis=-1, keepdims=True)  # [B, 1] residues
        fractions = counts / smooth_max1(n)  # exact for peptides, 0 at the all-zero input
        return jnp.concatenate([h_max, h_mean, fractions, n / LENGTH_SCALE], axis=-1)

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, L, A] -> [B]
        h = self.features(x)
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


def predict_fn(params: hk.Params, **config: Any) -> Callable[[jax.Array], jax.Array]:
    """A jitted predict function `f(x[B, L, 21]) -> logits[B]` for fixed parameters.

    This is the model-agnostic interface every attribution method in the course takes.
    """
    model = make_model(**config)
    return jax.jit(lambda x: model.apply(params, x))


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
