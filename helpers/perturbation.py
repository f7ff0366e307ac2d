"""Perturbation methods: coalition games over residues, and occlusion.

Shape glossary: B batch, L padded length, A = 21 channels, n residues of one peptide (the
players), C coalitions, M reference inputs (background peptides, or 1 baseline), W windows.

The players are the residue positions `0 .. n-1` of one peptide `x [L, A]`; padding
positions are never players and always keep x's values. A coalition is a boolean mask
`[n]`: present residues keep x's one-hot rows, absent ones are replaced from a reference.
Its value is the model's expected logit

    v(S) = mean_m f(x_S ; r_m)       (r_1 .. r_M: references [M, L, A])

- the *interventional* game: references are background peptides (absent residues are
  replaced by the background peptide's residue at the same position; a background peptide
  shorter than x leaves padding there);
- the *baseline* game: a single reference, e.g. all padding (`"padding"`: absent residues
  are masked in place, a padding row inside the sequence) or all zeros (`"zeros"`);
- the *deletion* game (`"delete"`): absent residues are spliced out, the kept ones shift
  left and padding fills the end, so every coalition is a real, shorter peptide.

`Game` evaluates many coalitions in few compiled, batched model calls and counts the model's
forward passes, so estimators can be compared by cost. Occlusion is the special case "leave
one window out" of the same game. Every function takes a predict function
`f(x[B, L, A]) -> logits[B]`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import jitting, validation
from helpers.attribution import PredictFn, _as_input, num_residues
from helpers.sequences import NUM_CHANNELS

FILLS = ("padding", "zeros", "delete")


def fill_reference(kind: str, x) -> jax.Array:
    """A single reference `[L, A]` for the baseline game: `padding` (every position is the
    padding token, so an absent residue is masked in place: a padding row inside the
    sequence) or `zeros` (all-zero rows). `delete` has no reference (residues are spliced
    out, see `splice`); its empty coalition is the all-padding input, returned here."""
    x = _as_input(x)
    if not isinstance(kind, str):
        raise TypeError(f"fill must be one of {FILLS} or an array, got {type(kind).__name__}")
    kind = validation.baseline_name(kind, allowed=FILLS, name="fill")  # the shared vocabulary
    if kind in ("padding", "delete"):
        return jnp.zeros_like(x).at[:, 0].set(1.0)
    return jnp.zeros_like(x)


def _splice(x: jax.Array, keep: jax.Array) -> jax.Array:
    """`x [L, A]`, `keep [c, L]` bool -> `[c, L, A]`: the kept rows in their order, then
    padding rows (jit-friendly: a stable sort of the positions, kept ones first)."""
    order = jnp.argsort(~keep, axis=1, stable=True)  # [c, L]
    rows = x[order]  # [c, L, A]
    valid = jnp.arange(x.shape[0])[None, :] < keep.sum(axis=1, keepdims=True)  # [c, L]
    padding = jnp.zeros(x.shape[-1], x.dtype).at[0].set(1.0)
    return jnp.where(valid[..., None], rows, padding)


def splice(x, masks) -> np.ndarray:
    """True deletion: for each coalition `masks [C, n]` (bool over the n residues of
    `x [L, A]`), the peptide with the absent residues cut out, the others shifted left in
    their order and padding at the end, `[C, L, A]`. Masking in place (`fill="padding"`)
    instead leaves a padding row inside the sequence, an input the training data never holds."""
    x = _as_input(x)
    n = num_residues(x)
    masks = validation.check_mask(masks, "masks", n)
    keep = np.zeros((len(masks), x.shape[0]), dtype=bool)
    keep[:, :n] = masks
    return np.asarray(_splice(x, jnp.asarray(keep)))


def _references(x: jax.Array, background, baseline) -> jax.Array:
    """The references `[M, L, A]` of the game, with clear errors for bad input."""
    if background is not None and baseline is not None:
        raise ValueError("pass either background (interventional game) or baseline, not both")
    if background is None and baseline is None:
        raise ValueError(
            "no background: pass background peptides [M, L, 21] (interventional game), "
            "or baseline='padding' / 'zeros' / an array [L, 21] for the baseline game"
        )
    if baseline is not None:
        ref = fill_reference(baseline, x) if isinstance(baseline, str) else _as_input(baseline, "baseline")
        if ref.shape != x.shape:
            raise ValueError(f"baseline has shape {ref.shape} but x has shape {x.shape}; they must match")
        return ref[None]
    bg = validation.as_float_array(background, "background").astype(np.float32)
    if bg.ndim == 2:
        bg = bg[None]
    if bg.ndim != 3 or bg.shape[1:] != x.shape:
        raise ValueError(f"background must have shape [M, {x.shape[0]}, {NUM_CHANNELS}], got {bg.shape}")
    if bg.shape[0] == 0:
        raise ValueError(
            "background is empty: pass at least one background peptide (tens are usual), "
            "or baseline='padding' for the baseline game"
        )
    if not np.isfinite(bg).all():
        raise ValueError("background contains NaN or infinite values")
    return jnp.asarray(bg)


def _hybrid_values(f: PredictFn, x: jax.Array, refs: jax.Array, keep: jax.Array) -> jax.Array:
    """`(x [L, A], refs [M, L, A], keep [c, L] bool) -> values [c]`: the mean over
    references of f at the hybrids (x where keep, the reference elsewhere)."""
    hybrid = jnp.where(keep[:, None, :, None], x[None, None], refs[None])  # [c, M, L, A]
    c, m = hybrid.shape[:2]
    return f(hybrid.reshape((c * m,) + x.shape)).reshape(c, m).mean(axis=1)


# jitted once per architecture for helpers.model.predict_fn's functions (helpers.jitting)
_coalition_values = jitting.per_model(_hybrid_values)


def _spliced(f: PredictFn, x: jax.Array, keep: jax.Array) -> jax.Array:
    """`(x [L, A], keep [c, L] bool) -> values [c]`: f of x with the residues that are not
    kept spliced out (`_splice`)."""
    return f(_splice(x, keep))


_spliced_values = jitting.per_model(_spliced)


class Game:
    """The coalition game of one peptide: `game(masks [C, n] bool) -> values [C]` (float64).

    Build it with `make_game`. Attributes: `n` players, `references` `[M, L, A]`,
    `full = v(all residues) = f(x)`, `empty = v(no residue)`, and `calls`, the number of
    model forward passes made so far (each coalition costs M).
    """

    def __init__(self, f: PredictFn, x: jax.Array, references: jax.Array, *, n: int, batch_size: int):
        self.f = f
        self.n = n
        self.x = x
        self.references = references
        self.batch_size = batch_size
        self.calls = 0
        ends = np.zeros((2, self.n), dtype=bool)
        ends[0] = True
        self.full, self.empty = (float(v) for v in self(ends))

    @property
    def size(self) -> int:
        """M, the number of references averaged over per coalition."""
        return int(self.references.shape[0])

    def __call__(self, masks) -> np.ndarray:
        masks = validation.check_mask(masks, "masks", self.n)
        length = self.x.shape[0]
        keep = np.ones((masks.shape[0], length), dtype=bool)  # padding always keeps x's rows
        keep[:, : self.n] = masks
        m = self.size
        # chunks of a power-of-two number of coalitions: few compiled shapes for any C
        chunk = max(1, min(self.batch_size // m, 1 << max(0, len(keep) - 1).bit_length()))
        out = []
        for start in range(0, len(keep), chunk):
            part = keep[start : start + chunk]
            pad = chunk - len(part)
            if pad:
                part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
            out.append(np.asarray(self._values(jnp.asarray(part)))[: chunk - pad])
        self.calls += len(masks) * m
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def _values(self, keep: jax.Array) -> jax.Array:
        """`keep [c, L]` bool -> `[c]`: x where kept, the references elsewhere, averaged."""
        return _coalition_values(self.f)(self.x, self.references, keep)


class SpliceGame(Game):
    """The deletion game: absent residues are cut out of the sequence (`splice`), so each
    coalition is the peptide made of its residues, in order, padded at the end. Its one
    reference is the all-padding input (the empty coalition); `size` is 1."""

    def _values(self, keep: jax.Array) -> jax.Array:
        return _spliced_values(self.f)(self.x, keep)


def make_game(
    f: PredictFn,
    x,
    *,
    background=None,
    baseline=None,
    length: int | None = None,
    batch_size: int = 16384,
) -> Game:
    """The coalition game of peptide `x [L, A]` under model f.

    Exactly one of `background` (`[M, L, A]` peptides: the interventional game) or
    `baseline` (`"padding"` (mask in place), `"zeros"` or an array `[L, A]`: the baseline
    game; `"delete"`: the deletion game, absent residues spliced out, see `SpliceGame`).

    `length`: evaluate the model on inputs cut to their first `length` positions, for speed.
    Only valid for models that ignore trailing padding (the course CNN does once `length`
    >= n + 2, the reach of its first convolution); the game checks that f(x) and f of the empty
    coalition's inputs are unchanged (to 1e-5) and raises otherwise. `batch_size`: inputs per call.
    """
    x = _as_input(x)
    refs = _references(x, background, baseline)
    n = num_residues(x)
    validation.check_int(batch_size, "batch_size", minimum=1)
    # The output contract (validation.check_logits), once per game: x and the first reference.
    validation.model_outputs(f, jnp.stack([x, refs[0]]))
    if length is not None:
        validation.check_int(length, "length")
        if not n <= length <= x.shape[0]:
            raise ValueError(f"length must lie between the {n} residues and L = {x.shape[0]}, got {length}")
        # x and the empty coalition's inputs (references inside x's residues, x's padding
        # after them), with and without the cut
        empty = jnp.concatenate([refs[:, :n], jnp.broadcast_to(x[n:], (refs.shape[0],) + x[n:].shape)], 1)
        full = jnp.concatenate([x[None], empty])
        before = np.asarray(f(full))
        after = np.asarray(f(full[:, :length]))
        worst = float(np.abs(before - after).max())
        if not worst <= 1e-5:
            raise ValueError(
                f"cutting inputs to length {length} changes the model's logits by up to {worst:.3g}: "
                "this model depends on trailing padding; use a larger length or length=None"
            )
        x, refs = x[:length], refs[:, :length]
    kind = SpliceGame if isinstance(baseline, str) and baseline == "delete" else Game
    return kind(f, x, refs, n=n, batch_size=batch_size)


check_key = validation.check_key  # (kept here: shapley and surrogate import it from here)


def game_for_fill(f: PredictFn, x, fill, *, length: int | None = None) -> Game:
    """The game of a perturbation method's `fill`: `"padding"`, `"zeros"`, a baseline array
    `[L, A]` (baseline game), `"delete"` (deletion game), or background peptides
    `[M, L, A]` (interventional game)."""
    fill_arr = None if isinstance(fill, str) else validation.as_float_array(fill, "fill")
    if fill_arr is not None and fill_arr.ndim == 3:
        return make_game(f, x, background=fill_arr, length=length)
    return make_game(f, x, baseline=fill if fill_arr is None else fill_arr, length=length)


# ----------------------------------------------------------------------------- occlusion


def window_masks(n: int, window: int, stride: int = 1) -> np.ndarray:
    """`[W, n]` bool masks with one window of `window` residues absent each, starting at
    0, stride, 2 stride, ... (a last window is added so that every residue is covered)."""
    validation.check_int(n, "n", minimum=1)
    validation.check_int(window, "window", minimum=1)
    validation.check_int(stride, "stride", minimum=1)
    window = min(window, n)
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    masks = np.ones((len(starts), n), dtype=bool)
    for w, s in enumerate(starts):
        masks[w, s : s + window] = False
    return masks


def occlusion(
    f: PredictFn,
    x,
    *,
    window: int = 1,
    stride: int = 1,
    fill="padding",
    length: int | None = None,
) -> np.ndarray:
    """Occlusion scores `[n]`: how much the logit drops when a window of residues is
    replaced, `f(x) - v(x without the window)`, averaged over the windows that cover each
    residue (as Captum does).

    `fill`: `"padding"` (mask the residues in place with padding rows), `"delete"` (splice
    them out: the rest shifts left, padding at the end), `"zeros"` (all-zero rows), an array
    `[L, A]` (a baseline), or background peptides `[M, L, A]` (the expected drop when the
    window is replaced by the background's residues at the same positions, padding where a
    background peptide is shorter). All windows go through the model in one batched call
    (chunked only beyond 16384 inputs).
    """
    game = game_for_fill(f, x, fill, length=length)
    masks = window_masks(game.n, window, stride)
    drops = game.full - game(masks)  # [W]
    covered = ~masks  # [W, n]
    return (drops[:, None] * covered).sum(axis=0) / covered.sum(axis=0)


def normalise(scores) -> np.ndarray:
    """Scores divided by their largest absolute value (all zeros stay zeros)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or not np.isfinite(s).all():
        raise ValueError(f"scores must be a finite vector [n], got shape {s.shape}")
    top = np.abs(s).max() if s.size else 0.0
    return s / top if top > 0 else s


def combined_score(*scores, absolute: bool = False) -> np.ndarray:
    """The average of several per-residue scores `[n]` after scaling each to a largest
    absolute value of 1 (e.g. occlusion and gradient x input). Signed by default;
    `absolute=True` averages the scaled magnitudes instead (Badger's "Interpretable deep
    learning" combines |drop| and |gradient| x input this way). A comparison, not a method
    with a guarantee: the scaling discards each score's units."""
    if len(scores) < 2:
        raise ValueError("combined_score needs at least two score vectors")
    normed = [np.abs(normalise(s)) if absolute else normalise(s) for s in scores]
    if len({len(s) for s in normed}) != 1:
        raise ValueError(f"score vectors have different lengths: {[len(s) for s in normed]}")
    return np.mean(normed, axis=0)
