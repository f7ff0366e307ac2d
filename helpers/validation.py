"""Shared checks of user input: a clear error, naming the argument, or a right answer.

Shape glossary: B batch, L padded length, A = 21 channels.

Every public function of the course validates its arguments at its entry with these
helpers, so that the same mistake gets the same message everywhere:

- `check_logits(out, batch)`: the *model output contract*. Every explainer takes a predict
  function `f(x[B, L, A]) -> logits[B]`: one real, finite logit per input. `[B, 1]`,
  `[B, 2]` (two classes, probabilities), a scalar, a vector of another length, integers or
  NaN are refused, each with what to pass instead. `model_outputs(f, xb)` calls `f` on a
  concrete batch and checks the result: explainers call it once per explanation, outside
  any jitted code, on a model call they need anyway where they can (so the check costs
  at most one small forward pass and never touches the compiled hot paths).
- `check_int`, `check_number`: counts must be integers (not floats, strings or bools),
  numbers must be real and finite; both with bounds.
- `check_finite`: arrays without NaN or infinity (inputs, baselines, backgrounds, right-hand
  sides of solvers, parameters).
- `check_peptides`: a list of peptide strings, never a single string (which would be read
  as a list of one-letter peptides).
- `check_key`: a JAX PRNG key, not a seed.
- `baseline_name`: the one vocabulary of named baselines and fills shared by integrated
  gradients, occlusion, the coalition games and LIME.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

# ----------------------------------------------------------------------------- numbers


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as a Python int; `TypeError` unless it is an integer (a float, even 5.0, a
    string or a bool is refused), `ValueError` outside `[minimum, maximum]`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def check_number(
    value, name: str, *, positive: bool = False, nonnegative: bool = False, nonzero: bool = False
) -> float:
    """`value` as a finite Python float; `TypeError` for a string, a bool or a non-scalar,
    `ValueError` for NaN, infinity or a value outside the stated range."""
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        value = np.asarray(value).item()  # a 0-d array (e.g. a jnp scalar) is a number
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if nonzero and value == 0:
        raise ValueError(f"{name} must not be 0")
    return value


def check_callable(value, name: str) -> Callable:
    if not callable(value):
        raise TypeError(f"{name} must be a function, got {type(value).__name__} {value!r}")
    return value


# ----------------------------------------------------------------------------- arrays


def as_float_array(value, name: str) -> np.ndarray:
    """`value` as a numpy float array; `TypeError` naming `name` when it holds strings or
    objects (instead of numpy's "could not convert string to float")."""
    if isinstance(value, str):
        raise TypeError(f"{name} must be a numeric array, got the string {value!r}")
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists
        raise TypeError(f"{name} must be a numeric array: {err}") from err
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def check_finite(arr, name: str) -> np.ndarray:
    """`arr` as a numpy array; `ValueError` naming the first NaN or infinite entry."""
    a = np.asarray(arr)
    if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"{name} contains NaN or infinity (first at index {where}: {a[where]})")
    return a


def check_finite_tree(tree, name: str) -> None:
    """`ValueError` if any leaf of a pytree (model parameters) holds NaN or infinity."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
            raise ValueError(f"{name} contain NaN or infinity (in {jax.tree_util.keystr(path)})")


def check_mask(masks, name: str, n: int) -> np.ndarray:
    """Coalitions `[C, n]` as bool; refuses values other than 0/1 (0.5 is not "present")."""
    m = np.asarray(masks)
    if m.ndim != 2 or m.shape[1] != n:
        raise ValueError(f"{name} must have shape [C, {n}] (one column per residue), got {m.shape}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.isin(m, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1): True = residue present; got dtype {m.dtype}")
    return m.astype(bool)


# ----------------------------------------------------------------------------- the model


def check_logits(out, batch: int, *, name: str = "f") -> np.ndarray:
    """The model output contract: `out` must be `[batch]` real, finite logits.

    Returns them as a float64 numpy array. Raises `ValueError` (wrong shape, NaN) or
    `TypeError` (not an array of floats), naming the model argument `name` and saying what
    to pass instead."""
    if isinstance(out, (tuple, list, dict)) or out is None:
        raise TypeError(f"the model {name} must return an array of logits [B], got {type(out).__name__}")
    arr = np.asarray(out)
    shape = arr.shape
    if arr.ndim == 0:
        raise ValueError(
            f"the model {name} returned a scalar for a batch of {batch} inputs: it must return one "
            f"logit per input, shape [B] (do not sum or average over the batch)"
        )
    if arr.ndim == 2 and shape[0] == batch and shape[1] == 1:
        raise ValueError(
            f"the model {name} returned shape {shape}: it must return logits of shape [B]; "
            f"drop the last axis, e.g. `lambda x: g(x)[:, 0]`"
        )
    if arr.ndim == 2 and shape[0] == batch:
        raise ValueError(
            f"the model {name} returned shape {shape} ({shape[1]} outputs per input, e.g. class "
            f"probabilities): explainers need logits of shape [B], one per input; for two classes pass "
            f"the log-odds of the class to explain, e.g. `lambda x: jnp.log(p(x)[:, 1]) - jnp.log(p(x)[:, 0])`"
        )
    if shape != (batch,):
        raise ValueError(
            f"the model {name} returned shape {shape} for a batch of {batch} inputs: it must return "
            f"one logit per input, shape [{batch}]"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(
            f"the model {name} returned dtype {arr.dtype}: logits must be floating point "
            f"(gradients and averages of integers or booleans are meaningless)"
        )
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(
            f"the model {name} returned a non-finite logit ({arr[i]}) for batch item {i}: "
            f"check its parameters and input"
        )
    return arr.astype(np.float64)


def model_outputs(f, xb, *, name: str = "f") -> np.ndarray:
    """`f(xb)` on a concrete batch `xb [B, ...]`, checked with `check_logits` (float64 `[B]`)."""
    check_callable(f, name)
    return check_logits(f(xb), int(np.shape(xb)[0]), name=name)


# ----------------------------------------------------------------------------- keys, peptides


def check_key(key, name: str = "key") -> None:
    """Raises unless `key` is one JAX PRNG key (`jax.random.PRNGKey(seed)` or `jax.random.key`)."""
    raw = isinstance(key, jax.Array) and key.shape == (2,) and key.dtype == jnp.uint32
    typed = isinstance(key, jax.Array) and key.shape == () and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not (raw or typed):
        raise ValueError(f"{name} must be a JAX PRNG key, e.g. jax.random.PRNGKey(0), not a seed or an array")


def check_peptides(seqs, name: str = "sequences") -> list:
    """`seqs` as a list; refuses a single string (it would be read as one-letter peptides)
    and anything that is not a collection."""
    if isinstance(seqs, (str, bytes)):
        raise TypeError(
            f"{name} must be a list of peptide strings, got a single string {seqs[:30]!r}: "
            f"wrap it in a list, [{seqs[:30]!r}]"
        )
    if not isinstance(seqs, Iterable) or isinstance(seqs, np.ndarray) and seqs.ndim != 1:
        raise TypeError(f"{name} must be a list of peptide strings, got {type(seqs).__name__}")
    return list(seqs)


def check_names(values, name: str, allowed: tuple) -> tuple:
    """A non-empty tuple of names from `allowed`; refuses a single string."""
    if isinstance(values, str):
        raise TypeError(f"{name} must be a tuple of names from {allowed}, got the single string {values!r}: "
                        f"write ({values!r},)")
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values}")
    return values


# ----------------------------------------------------------------------------- baselines

BASELINE_NAMES = ("zeros", "padding", "uniform", "mean", "delete")
"""Named baselines and fills, one vocabulary for every method (`zero` is a synonym of
`zeros`). `zeros`: all-zero rows; `padding`: the padding token (a residue masked in place);
`uniform`: 1/20 on each amino acid at the residues; `mean`: the training-set mean (needs
the training set); `delete`: residues spliced out (a perturbation, not a point)."""
_ALIASES = {"zero": "zeros"}
_WHY_NOT = {
    "mean": "it needs the training set: pass attribution.make_baseline('mean', x, train_x=...) as an array",
    "delete": "splicing residues out is a perturbation, not a point between which one can "
              "interpolate; use 'padding' (mask in place) or an array",
    "uniform": "pass attribution.make_baseline('uniform', x) as an array",
}


def baseline_name(value: str, *, allowed: tuple, name: str = "baseline") -> str:
    """The canonical name of a named baseline or fill, or a `ValueError` that says which
    names this method takes and why another known name does not apply here."""
    canonical = _ALIASES.get(value, value)
    if canonical in allowed:
        return canonical
    if canonical in BASELINE_NAMES:
        raise ValueError(f"{name}={value!r} is not available here: {_WHY_NOT.get(canonical, '')} "
                         f"(names this method takes: {allowed})")
    raise ValueError(f"unknown {name} {value!r}; use one of {allowed}, or pass an array [L, 21]")


def output_struct(f, shape: tuple, *, name: str = "f") -> None:
    """The shape and dtype part of the output contract, from `jax.eval_shape` alone (no
    computation): `f` on a batch of 2 inputs of one item's `shape`."""
    out = jax.eval_shape(f, jax.ShapeDtypeStruct((2, *shape), jnp.float32))
    if not hasattr(out, "shape"):
        raise TypeError(f"the model {name} must return an array of logits [B], got {type(out).__name__}")
    check_logits(np.zeros(out.shape, out.dtype), 2, name=name)


def factory_uses(make_f, activation, shape: tuple, *, name: str = "make_f"):
    """`(used, closed_jaxpr)`: whether the model `make_f(act)` builds calls `act` at all
    (traced once, on a batch of 2 inputs of `shape`; nothing is computed), and its program.
    A factory that ignores its argument builds a model with some other activation."""
    used = []

    def probe(z):
        used.append(True)
        return activation(z)

    g = make_f(probe)
    check_callable(g, f"{name}(activation)")
    closed = jax.make_jaxpr(g)(jax.ShapeDtypeStruct((2, *shape), jnp.float32))
    return bool(used), closed
