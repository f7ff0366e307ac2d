"""What the first convolution detects, and motifs found in attribution maps.

Shape glossary: N peptides, L padded length, A = 21 channels (0 = padding), C first-layer
filters, k filter width, K = 20 amino acids (`sequences.AMINO_ACIDS` order), S seqlets,
w seqlet width, G clusters.

Filters. The course CNN's first layer computes, at position i, the score
`z_c(i) = b_c + sum_j W[j, x_(i+j-h), c]` (h = k // 2, "SAME" padding with zero rows beyond
the input): a sum of one weight per position of a k-residue window, the form of a
position-specific scoring matrix. Two position weight matrices (PWMs) follow from it:

- `filter_pwm`: the amino-acid frequencies of the `top` windows with the highest score over a
  set of peptides (windows wholly inside a peptide), the DeepBind/Basset recipe. It shows what
  the filter responds to *in real peptides*, background composition included. By default
  every window counts; `per_peptide=True` takes one window per peptide (DeepBind's rule;
  DeepBind kept the best window of every test sequence whose response passed a threshold,
  while the `top` cut is ours) and `distinct=True` drops repeated windows (also ours), so
  that near-identical analogues of one peptide do not fill the PWM (`best_windows` returns
  which windows were used).
- `softmax_pwm`: `p_j(a) ∝ exp(beta W[j, a])`. A PWM p scores a window by the log-likelihood
  ratio `sum_j log(p_j(a_j) / q(a_j))`; against the uniform background q this equals
  `beta sum_j W[j, a_j]` up to a constant per position exactly when p is this softmax, so the
  weights are a PWM's log-odds at an inverse temperature beta that the network never fixes
  (tanh saturates), which is why the data PWM is the primary one here.

`ablate` zeroes one filter (its weights and bias): its activation becomes the constant
tanh(0) + 1 = 1 on every residue, and the drop in test AUROC measures what it carried.

Seqlets (the TF-MoDISco idea, Shrikumar et al. 2018): `seqlets` cuts, from every peptide, the
window of `w` residues with the largest summed attribution, if it exceeds a threshold;
`cluster_seqlets` groups them with a k-means whose centres are PWMs and which may shift a
seqlet by up to `shift` positions against a centre (a motif cut at different offsets is one
motif); `consensus` reads a centre as letters.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from helpers import validation
from helpers.sequences import AMINO_ACIDS, NUM_CHANNELS

K = len(AMINO_ACIDS)  # 20
_INDEX = {a: i for i, a in enumerate(AMINO_ACIDS)}


# ----------------------------------------------------------------------------- filters


def first_layer(params) -> tuple[np.ndarray, np.ndarray]:
    """The first convolution's weights `[k, A, C]` and biases `[C]` from the model's parameters."""
    keys = [m for m in params if m.endswith("conv0")]
    if len(keys) != 1:
        raise ValueError(f"params must hold exactly one module ending in 'conv0', found {keys}")
    return np.asarray(params[keys[0]]["w"], dtype=np.float64), np.asarray(params[keys[0]]["b"], dtype=np.float64)


def _check_x(x) -> np.ndarray:
    xa = validation.as_float_array(x, "x")
    if xa.ndim != 3 or xa.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"x must be one-hot peptides [N, L, {NUM_CHANNELS}], got shape {xa.shape}")
    return xa


def filter_scores(params, x) -> np.ndarray:
    """`[N, L, C]`: the first convolution's score `z_c(i)` (before tanh) at every position.
    For one-hot rows this is a look-up of one weight per window position (rows beyond the
    input, and all-zero rows, contribute 0)."""
    w, b = first_layer(params)
    xa = _check_x(x)
    if not np.isin(xa, (0.0, 1.0)).all() or (xa.sum(-1) > 1).any():
        raise ValueError("x must be one-hot (each row a single 1, or all zero)")
    k, h = w.shape[0], w.shape[0] // 2
    idx = np.where(xa.sum(-1) > 0, xa.argmax(-1), NUM_CHANNELS)  # [N, L]; NUM_CHANNELS = an all-zero row
    idx = np.pad(idx, ((0, 0), (h, k - 1 - h)), constant_values=NUM_CHANNELS)
    wz = np.concatenate([w, np.zeros((k, 1, w.shape[2]))], axis=1)  # [k, A + 1, C]
    length = xa.shape[1]
    return b + sum(wz[j][idx[:, j : j + length]] for j in range(k))


def _windows_inside(x: np.ndarray, k: int) -> np.ndarray:
    """`[N, L]` bool: the window of k residues centred at i lies wholly inside the peptide."""
    h = k // 2
    n = x[..., 1:].sum(-1).sum(-1).round().astype(int)  # [N] residues
    i = np.arange(x.shape[1])
    return (i[None] - h >= 0) & (i[None] + (k - 1 - h) < n[:, None])


def best_windows(params, x, *, top: int = 100, per_peptide: bool = False, distinct: bool = False) -> np.ndarray:
    """`[C, top, 2]`: per filter, the (peptide, centre position) of its `top` highest-scoring
    windows of k residues lying wholly inside a peptide of `x [N, L, A]`, best first.

    `per_peptide=True` lets each peptide contribute only its best window (DeepBind's
    one-window-per-sequence rule; the `top` cut is ours): the windows are then drawn from
    `top` different peptides; `distinct=True` (ours, not DeepBind's) keeps a
    window only if its k residues differ from every better-scoring window already taken
    (analogue series repeat the same window many times). Ties keep the data's order."""
    w, _ = first_layer(params)
    xa = _check_x(x)
    validation.check_int(top, "top", minimum=1)
    for flag, name in ((per_peptide, "per_peptide"), (distinct, "distinct")):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    k, h = w.shape[0], w.shape[0] // 2
    z = filter_scores(params, xa)
    inside = _windows_inside(xa, k)
    aa = xa[..., 1:].argmax(-1)  # [N, L]
    out = np.zeros((w.shape[2], top, 2), dtype=int)
    for c in range(w.shape[2]):
        if per_peptide:
            pn = np.flatnonzero(inside.any(1))
            pi = np.where(inside[pn], z[pn, :, c], -np.inf).argmax(1)
        else:
            pn, pi = np.nonzero(inside)
        order = np.argsort(-z[pn, pi, c], kind="stable")
        pn, pi = pn[order], pi[order]
        if distinct:
            words = np.stack([aa[pn, pi + j - h] for j in range(k)], axis=1)  # [n, k]
            first = np.sort(np.unique(words, axis=0, return_index=True)[1])
            pn, pi = pn[first], pi[first]
        if len(pn) < top:
            rule = " ".join(r for r, f in (("per peptide", per_peptide), ("distinct", distinct)) if f)
            raise ValueError(f"only {len(pn)} {rule + ' ' if rule else ''}windows of {k} residues in x for filter {c}, "
                             f"fewer than top={top}")
        out[c, :, 0], out[c, :, 1] = pn[:top], pi[:top]
    return out


def window_words(x, windows, *, k: int = 5) -> list[list[str]]:
    """The residues of `windows [C, S, 2]` (from `best_windows`: rows `(peptide, centre)`) as
    strings of k letters, per filter. Every window must lie wholly on residues: one that
    reaches past either end of the array, or onto padding or an empty row, is refused (its
    letters would otherwise be read from the other end or as 'A')."""
    xa = _check_x(x)
    win = np.asarray(windows)
    if win.ndim != 3 or win.shape[-1] != 2 or not np.issubdtype(win.dtype, np.integer):
        raise ValueError(f"windows must be integer (peptide, centre) pairs of shape [C, S, 2], got {win.dtype} {win.shape}")
    validation.check_int(k, "k", minimum=1)
    h = k // 2
    pep, start = win[..., 0], win[..., 1] - h
    outside = (pep < 0) | (pep >= xa.shape[0]) | (start < 0) | (start + k > xa.shape[1])
    if outside.any():
        c, s_ = np.argwhere(outside)[0]
        raise ValueError(f"windows[{c}, {s_}] = {tuple(int(v) for v in win[c, s_])}: every peptide index must be in [0, {xa.shape[0]}) "
                         f"and every window of {k} residues centred at `centre` must lie in [0, {xa.shape[1]}); "
                         f"use motifs.best_windows")
    residue = (xa[..., 1:].sum(-1) == 1) & (xa[..., 0] == 0)  # [N, L]: one amino acid, not padding
    on = residue[pep[..., None], start[..., None] + np.arange(k)]  # [C, S, k]
    if not on.all():
        c, s_, j = np.argwhere(~on)[0]
        raise ValueError(f"windows[{c}, {s_}] = {tuple(int(v) for v in win[c, s_])} covers position {start[c, s_] + j} of peptide "
                         f"{pep[c, s_]}, which is padding or not one residue; windows must lie wholly on residues "
                         f"(motifs.best_windows gives such windows)")
    aa = xa[..., 1:].argmax(-1)
    return [["".join(AMINO_ACIDS[aa[p, i + j - h]] for j in range(k)) for p, i in wc] for wc in win]


def filter_pwm(params, x, *, top: int = 100, per_peptide: bool = False, distinct: bool = False) -> np.ndarray:
    """`[C, k, K]`: per filter, the amino-acid frequencies of its `top` highest-scoring windows
    (of k residues, wholly inside a peptide) over the peptides `x [N, L, A]`; `per_peptide`
    and `distinct` as in `best_windows` (defaults: every window counts, repeats included)."""
    xa = _check_x(x)
    win = best_windows(params, xa, top=top, per_peptide=per_peptide, distinct=distinct)
    k = first_layer(params)[0].shape[0]
    h = k // 2
    out = np.zeros((win.shape[0], k, K))
    for c, wc in enumerate(win):
        for j in range(k):
            out[c, j] = xa[wc[:, 0], wc[:, 1] + j - h, 1:].mean(axis=0)
    return out


def softmax_pwm(params, *, beta: float = 1.0) -> np.ndarray:
    """`[C, k, K]`: `softmax(beta W[j, 1:, c])` over the amino acids at each filter position."""
    validation.check_number(beta, "beta", positive=True)
    w, _ = first_layer(params)
    logits = beta * np.moveaxis(w[:, 1:, :], -1, 0)  # [C, k, K]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ablate(params, c: int, *, value: float = 0.0):
    """A copy of the parameters with first-layer filter `c` switched off: its weights set to 0
    and its bias to `value` (0: the activation is tanh(0) + 1 = 1 on every residue)."""
    w, _ = first_layer(params)
    validation.check_int(c, "c", minimum=0, maximum=w.shape[2] - 1)
    validation.check_number(value, "value")
    key = next(m for m in params if m.endswith("conv0"))
    out = {m: dict(d) for m, d in params.items()}
    out[key]["w"] = np.asarray(params[key]["w"]).copy()
    out[key]["w"][:, :, c] = 0.0
    out[key]["b"] = np.asarray(params[key]["b"]).copy()
    out[key]["b"][c] = value
    return out


# ----------------------------------------------------------------------------- seqlets


class Seqlet(NamedTuple):
    peptide: int  # index into the sequences
    start: int  # first residue of the window
    sequence: str  # the w residues
    score: float  # the window's summed attribution


def seqlets(scores, sequences, *, width: int = 5, threshold: float | None = None, quantile: float = 0.9) -> list[Seqlet]:
    """The window of `width` residues with the largest summed score, one per peptide, kept when
    that sum exceeds `threshold` (default: the `quantile` of all windows' sums over the set).
    `scores` is a list of per-residue scores `[n_p]`; peptides shorter than `width` are skipped."""
    seqs = validation.check_peptides(sequences)
    scores = list(scores)
    validation.check_int(width, "width", minimum=1)
    validation.check_number(quantile, "quantile")
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must lie in [0, 1), got {quantile}")
    if len(scores) != len(seqs):
        raise ValueError(f"{len(scores)} score vectors for {len(seqs)} sequences")
    sums = []
    for p, (s, sc) in enumerate(zip(seqs, scores, strict=True)):
        sc = np.asarray(sc, dtype=float)
        if not isinstance(s, str) or sc.shape != (len(s),) or not np.isfinite(sc).all():
            raise ValueError(f"scores[{p}] must be one finite value per residue of sequences[{p}]")
        sums.append(np.convolve(sc, np.ones(width), mode="valid") if len(s) >= width else np.zeros(0))
    if threshold is None:
        pooled = np.concatenate(sums)
        if pooled.size == 0:
            raise ValueError(f"no peptide has {width} residues or more")
        threshold = float(np.quantile(pooled, quantile))
    validation.check_number(threshold, "threshold")
    out = []
    for p, (s, ws) in enumerate(zip(seqs, sums, strict=True)):
        if ws.size and ws.max() > threshold:
            i = int(np.argmax(ws))
            out.append(Seqlet(p, i, s[i : i + width], float(ws[i])))
    return out


def one_hot(words) -> np.ndarray:
    """`[S, w, K]` one-hot of equally long amino-acid strings."""
    words = validation.check_peptides(words, "words")
    if not words or len({len(s) for s in words}) != 1:
        raise ValueError("words must be a non-empty list of strings of one length")
    try:
        idx = np.array([[_INDEX[a] for a in s] for s in words])
    except KeyError as e:
        raise ValueError(f"words must hold only the 20 amino-acid letters, found {e.args[0]!r}") from None
    return np.eye(K)[idx]


class Clusters(NamedTuple):
    labels: np.ndarray  # [S] cluster of each seqlet, clusters numbered by size (0 largest)
    shifts: np.ndarray  # [S] offset of each seqlet against its centre
    pwms: np.ndarray  # [G, w + 2 shift, K] frequencies (rows without data are uniform)
    sizes: np.ndarray  # [G] seqlets per cluster


def _centres(oh: np.ndarray, labels, shifts, g: int, shift: int, pseudo: float) -> np.ndarray:
    s, w, _ = oh.shape
    counts = np.full((g, w + 2 * shift, K), pseudo)
    for i in range(s):
        counts[labels[i], shift + shifts[i] : shift + shifts[i] + w] += oh[i]
    return counts / counts.sum(-1, keepdims=True)


def cluster_seqlets(words, *, clusters: int, shift: int = 1, iterations: int = 30, seed: int = 0,
                    pseudocount: float = 0.1) -> Clusters:
    """k-means of seqlets with shifts: each centre is a PWM `[w + 2 shift, K]`; a seqlet joins
    the centre and offset (-shift .. shift) under which its log-likelihood is highest; centres
    are re-estimated from their aligned seqlets (with a pseudocount) until nothing changes."""
    oh = one_hot(words)
    s, w, _ = oh.shape
    validation.check_int(clusters, "clusters", minimum=1, maximum=s)
    validation.check_int(shift, "shift", minimum=0)
    validation.check_int(iterations, "iterations", minimum=1)
    validation.check_number(pseudocount, "pseudocount", positive=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, clusters, s)
    shifts = np.zeros(s, int)
    for _ in range(iterations):
        logp = np.log(_centres(oh, labels, shifts, clusters, shift, pseudocount))  # [G, w + 2 shift, K]
        ll = np.stack([np.einsum("swk,gwk->sg", oh, logp[:, shift + d : shift + d + w]) for d in range(-shift, shift + 1)],
                      axis=-1)  # [S, G, 2 shift + 1]
        best = ll.reshape(s, -1).argmax(1)
        new_labels, new_shifts = best // (2 * shift + 1), best % (2 * shift + 1) - shift
        if np.array_equal(new_labels, labels) and np.array_equal(new_shifts, shifts):
            break
        labels, shifts = new_labels, new_shifts
    sizes = np.bincount(labels, minlength=clusters)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(clusters, int)
    rank[order] = np.arange(clusters)
    labels = rank[labels]
    counts = _centres(oh, labels, shifts, clusters, shift, 1e-9)  # frequencies without the pseudocount
    return Clusters(labels, shifts, counts, sizes[order])


def check_background(background) -> np.ndarray:
    """`[K]`: a background composition (`None`: uniform), or a `ValueError` naming the problem."""
    if background is None:
        return np.full(K, 1.0 / K)
    q = validation.as_float_array(background, "background")
    if q.shape != (K,) or not np.isfinite(q).all() or (q <= 0).any() or abs(q.sum() - 1.0) > 1e-6:
        raise ValueError(f"background must be {K} positive fractions summing to 1 (AMINO_ACIDS order), got shape {q.shape}")
    return q


def information(pwm, *, background=None) -> np.ndarray:
    """`[w]` information content (bits) of each row of a PWM `[w, K]` against a background
    composition `[K]`: the relative entropy `sum_a p(a) log2(p(a) / q(a))`. With the uniform
    background (the default) this is log2(20) minus the row's entropy."""
    p = validation.as_float_array(pwm, "pwm")
    if p.ndim != 2 or p.shape[1] != K:
        raise ValueError(f"pwm must have shape [w, {K}], got {p.shape}")
    q = check_background(background)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log2(p / q), 0.0).sum(-1)


def consensus(pwm, *, min_bits: float = 1.0) -> str:
    """The most frequent amino acid of each row of `pwm [w, K]`, with the flanking rows
    below `min_bits` of information trimmed off (lower case inside)."""
    p = validation.as_float_array(pwm, "pwm")
    bits = information(p)
    strong = np.flatnonzero(bits >= min_bits)
    if strong.size == 0:
        return ""
    letters = [AMINO_ACIDS[k] if bits[j] >= min_bits else AMINO_ACIDS[k].lower()
               for j, k in enumerate(p.argmax(-1))]
    return "".join(letters[strong[0] : strong[-1] + 1])
