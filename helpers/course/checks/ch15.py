"""Exercise checks of chapter 15, filters and motifs: saturation mutagenesis and a filter's
position weight matrix (convention: `_common`)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers.course.checks._common import CheckFailed, _run

PEPTIDES = ("GIGKFLHSAKKFGKAFVGEIMNS", "KWKLFKKIEK", "FLPLIGRVLSGIL")  # magainin 2, a synthetic AMP, temporin A
WORD = "KWLKF"  # the word the planted filter detects


def _rng(seed: int | None, salt: int) -> np.random.Generator:
    return np.random.default_rng(12345 + salt if seed is None else 10_000 * seed + salt)


def _peptides(seed: int | None) -> tuple[str, ...]:
    if seed is None:
        return PEPTIDES
    rng = _rng(seed, 1)
    return tuple("".join(rng.choice(list(seqs_lib.AMINO_ACIDS), int(rng.integers(8, 25)))) for _ in range(3))


def check_saturation_mutagenesis(student: Callable, *, seed: int | None = None) -> str:
    """`student(f, x [L, A]) -> [n, 20]`: for each residue i and amino acid k (`AMINO_ACIDS`
    order), f(x with residue i replaced by k) - f(x). Cases: an additive model with a random
    table W, where the answer is W[i, k] - W[i, x_i]; the course CNN against
    `mutagenesis.saturation_mutagenesis`."""
    from helpers import model as model_lib
    from helpers import mutagenesis

    length = 32
    table = np.asarray(jax.random.normal(jax.random.PRNGKey(7 if seed is None else seed), (length, 21)))
    additive = jax.jit(lambda xb: jnp.einsum("bla,la->b", xb, jnp.asarray(table)))
    params, _ = model_lib.load_pretrained()
    cnn = model_lib.predict_fn(params)
    peptides = _peptides(seed)
    for seq in peptides:
        x = jnp.asarray(seqs_lib.encode(seq, length=length))
        idx = np.asarray(x).argmax(-1)[: len(seq)]
        got = _run(student, additive, x, what="your saturation mutagenesis")
        if got.shape != (len(seq), 20):
            raise CheckFailed(f"{seq} has {len(seq)} residues: the map must have shape ({len(seq)}, 20) "
                              f"[n, 20], one column per amino acid; yours has {got.shape}")
        want = table[np.arange(len(seq)), 1:] - table[np.arange(len(seq)), idx][:, None]
        own = got[np.arange(len(seq)), idx - 1]
        if np.abs(own).max() > 1e-4:
            raise CheckFailed(f"replacing a residue by itself changes nothing, but your map is "
                              f"{own[np.argmax(np.abs(own))]:.3g} there on {seq}: column k must be amino acid "
                              f"AMINO_ACIDS[k] (channel k + 1)")
        if np.abs(got + want).max() < 1e-4 < np.abs(want).max():
            raise CheckFailed("your map has the wrong sign: an effect is f(variant) - f(x), positive when "
                              "the substitution raises the logit")
        if np.abs(got - want).max() > 1e-4:
            raise CheckFailed(f"on an additive model the effect of substituting k at residue i is W[i, k] - W[i, x_i]; "
                              f"yours is off by {np.abs(got - want).max():.3g} on {seq}")
        got = _run(student, cnn, x, what="your saturation mutagenesis")
        want = mutagenesis.saturation_mutagenesis(cnn, [seq], length=length)[0]
        if got.shape != want.shape or np.abs(got - want).max() > 1e-3:
            raise CheckFailed(f"on the course CNN your map differs from the reference by "
                              f"{np.abs(got - want).max() if got.shape == want.shape else 'its shape'} on {seq}")
    return f"saturation mutagenesis: all {2 * len(peptides)} cases pass"


def _planted(seed: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Random peptides `[N, L, A]`, 20 of them carrying WORD once, and the filter `[5, A]`
    that scores a window by how many of its residues match WORD."""
    rng = _rng(seed, 2)
    peptides = []
    for p in range(60):
        s = list(rng.choice(list("ACDEGHINPQRSTVY"), int(rng.integers(8, 20))))  # no K, W, L, F
        if p < 20:
            start = int(rng.integers(0, len(s) - len(WORD) + 1))
            s[start : start + len(WORD)] = list(WORD)
        peptides.append("".join(s))
    x = seqs_lib.encode_batch(peptides, length=24)
    w = np.zeros((len(WORD), seqs_lib.NUM_CHANNELS))
    w[np.arange(len(WORD)), [seqs_lib.ALPHABET.index(a) for a in WORD]] = 1.0
    return x, w, 20


def check_filter_pwm(student: Callable, *, seed: int | None = None) -> str:
    """`student(w [k, A], x [N, L, A], top) -> [k, 20]`: score every window of k residues that
    lies wholly inside a peptide by `sum_j w[j, x_(start + j)]`, keep the `top` highest, and
    return the amino-acid frequencies at each of the k positions (rows sum to 1). Cases: a
    filter that matches a planted word (its PWM is the word, exactly), and a random filter
    against `motifs.filter_pwm`."""
    from helpers import motifs

    x, w, top = _planted(seed)
    got = _run(student, w, x, top, what="your filter PWM")
    if got.shape != (len(WORD), 20):
        raise CheckFailed(f"the PWM must have shape ({len(WORD)}, 20) [k, 20]: one row per filter position, one "
                          f"column per amino acid (leave out the padding channel); yours has {got.shape}")
    if not np.allclose(got.sum(axis=1), 1.0, atol=1e-5):  # float32 (jnp) frequencies pass
        raise CheckFailed(f"each row of a PWM holds frequencies and sums to 1; yours sum to {np.round(got.sum(axis=1), 3)}: "
                          "divide the counts by the number of windows")
    want = np.eye(20)[[seqs_lib.AMINO_ACIDS.index(a) for a in WORD]]
    if np.abs(got - want).max() > 1e-5:
        raise CheckFailed(f"the {top} windows that score highest under a filter matching {WORD} are its {top} planted "
                          f"copies, so the PWM is {WORD} exactly; yours is off by {np.abs(got - want).max():.2f}: keep "
                          "the highest-scoring windows, and only windows wholly inside a peptide")
    rng = _rng(seed, 3)
    w_random = rng.normal(size=(5, seqs_lib.NUM_CHANNELS))
    x_random = seqs_lib.encode_batch(["".join(rng.choice(list(seqs_lib.AMINO_ACIDS), int(rng.integers(6, 20))))
                                      for _ in range(40)], length=24)
    got = _run(student, w_random, x_random, 30, what="your filter PWM")
    params = {"check/conv0": {"w": w_random[..., None], "b": np.zeros(1)}}
    want = motifs.filter_pwm(params, x_random, top=30)[0]
    if got.shape != want.shape or np.abs(got - want).max() > 1e-5:
        raise CheckFailed("on a random filter your PWM differs from the reference "
                          f"(largest difference {np.abs(got - want).max() if got.shape == want.shape else 'in shape'})")
    return "filter PWM: the planted word and the random filter pass"
