"""Chapter 15's exercise checks: a correct solution passes (book cases and a grading seed), a
stub fails with "not written yet", and typical mistakes fail with the sentence naming them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers.course.checks import ch15
from helpers.course.checks._common import CheckFailed


def good_ism(f, x):
    n = int((np.asarray(x).argmax(-1) > 0).sum())
    variants = jnp.stack([x.at[i].set(jax.nn.one_hot(a, 21)) for i in range(n) for a in range(1, 21)])
    return (np.asarray(f(variants)) - float(f(x[None])[0])).reshape(n, 20)


def flipped_ism(f, x):
    return -good_ism(f, x)


def padding_column_ism(f, x):  # column k is channel k (padding first): the own residue is off by one
    n = int((np.asarray(x).argmax(-1) > 0).sum())
    variants = jnp.stack([x.at[i].set(jax.nn.one_hot(a, 21)) for i in range(n) for a in range(0, 20)])
    return (np.asarray(f(variants)) - float(f(x[None])[0])).reshape(n, 20)


def good_pwm(w, x, top):
    x = np.asarray(x)
    k = w.shape[0]
    n = x[..., 1:].sum(axis=(1, 2)).astype(int)
    windows = [(float((w * x[p, s : s + k]).sum()), p, s) for p in range(len(x)) for s in range(n[p] - k + 1)]
    best = sorted(windows, key=lambda t: -t[0])[:top]
    return np.mean([x[p, s : s + k, 1:] for _, p, s in best], axis=0)


def lowest_pwm(w, x, top):
    return good_pwm(-w, x, top)


def counts_pwm(w, x, top):
    return good_pwm(w, x, top) * top


def stub(*args):
    raise NotImplementedError("exercise: write it")


@pytest.mark.parametrize("seed", [None, 3])
def test_correct_solutions_pass(seed):
    assert "pass" in ch15.check_saturation_mutagenesis(good_ism, seed=seed)
    assert "pass" in ch15.check_filter_pwm(good_pwm, seed=seed)


def test_stubs_fail():
    for check in (ch15.check_saturation_mutagenesis, ch15.check_filter_pwm):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


def test_typical_mistakes_fail_with_their_sentence():
    with pytest.raises(CheckFailed, match="wrong sign"):
        ch15.check_saturation_mutagenesis(flipped_ism)
    with pytest.raises(CheckFailed, match="replacing a residue by itself"):
        ch15.check_saturation_mutagenesis(padding_column_ism)
    with pytest.raises(CheckFailed, match="highest-scoring windows"):
        ch15.check_filter_pwm(lowest_pwm)
    with pytest.raises(CheckFailed, match="sums to 1"):
        ch15.check_filter_pwm(counts_pwm)
