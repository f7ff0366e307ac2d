"""Chapter 16's exercise checks: a correct answer passes, a stub fails, a typical mistake
fails with its sentence."""

import numpy as np
import pytest

from helpers.course.checks import ch16
from helpers.course.checks._common import CheckFailed


def pd_right(f, x, j, grid):
    x = np.asarray(x, float)
    out = []
    for v in grid:
        rows = x.copy()
        rows[:, j] = v
        out.append(f(rows).mean())
    return np.array(out)


def pd_at_mean(f, x, j, grid):  # the typical mistake: the model at the average row
    m = np.asarray(x, float).mean(0)
    return np.array([f(np.r_[m[:j], v, m[j + 1:]][None])[0] for v in grid])


def ale_right(f, x, j, edges):
    x = np.asarray(x, float)
    k = np.clip(np.searchsorted(edges, x[:, j], side="left"), 1, len(edges) - 1)
    lo, hi = x.copy(), x.copy()
    lo[:, j], hi[:, j] = edges[k - 1], edges[k]
    d = f(hi) - f(lo)
    means = np.array([d[k == b].mean() if (k == b).any() else 0.0 for b in range(1, len(edges))])
    return np.r_[0.0, np.cumsum(means)]


def ale_all_rows(f, x, j, edges):  # the typical mistake: every row in every bin (partial dependence)
    x = np.asarray(x, float)
    vals = []
    for v in edges:
        rows = x.copy()
        rows[:, j] = v
        vals.append(f(rows).mean())
    return np.array(vals) - vals[0]


def stub(*args):
    raise NotImplementedError("write it")


@pytest.mark.parametrize("seed", [None, 3])
def test_correct_answers_pass(seed):
    assert "pass" in ch16.check_partial_dependence(pd_right, seed=seed)
    assert "pass" in ch16.check_ale(ale_right, seed=seed)


@pytest.mark.parametrize("check", [ch16.check_partial_dependence, ch16.check_ale])
def test_stubs_fail(check):
    with pytest.raises(CheckFailed, match="not written yet"):
        check(stub)


def test_typical_mistakes_fail_with_their_sentence():
    with pytest.raises(CheckFailed, match="average row"):
        ch16.check_partial_dependence(pd_at_mean)
    with pytest.raises(CheckFailed, match="that is partial dependence"):
        ch16.check_ale(ale_all_rows)
