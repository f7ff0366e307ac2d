"""Chapter 7's shipped study (helpers/pretrained/shapley_study.npz): its settings, checks that
need no recomputation, and `--small` (seed 0 and the shortest peptide, the same code path)
against the file."""

import numpy as np
import pytest

from helpers import shapley_study as ST

# measured: the script's seed 0 and peptide (--small) rerun under `taskset -c 0` differed from
# the shipped file by 0 (grid) and at most 1.2e-7 logits (SmoothGrad); the chapter uses the same bound
SHIPPED_TOL = 1e-5


@pytest.fixture(scope="module")
def shipped():
    return ST.load_study()


def test_shipped_study_records_its_command_and_settings(shipped):
    d = shipped
    assert str(d["config_command"]) == ST.COMMAND and not bool(d["config_small"])
    assert tuple(d["config_seeds"]) == ST.SEEDS == tuple(range(8))
    assert tuple(d["config_perm_budgets"]) == ST.PERM_BUDGETS and tuple(d["config_kernel_budgets"]) == ST.KERNEL_BUDGETS
    assert str(d["config_peptide"]) == ST.PEPTIDE and list(d["config_background"]) == [64, 0]
    runs = len(ST.SEEDS) * (len(ST.PERM_BUDGETS) + len(ST.KERNEL_BUDGETS))
    n = len(ST.PEPTIDE)
    assert d["conv_values"].shape == (runs, n) and d["conv_stderr"].shape == (runs, n)
    assert len(d["agree_index"]) == ST.N_PEPTIDES and list(d["agree_methods"]) == list(ST.METHODS)


def test_shipped_runs_are_efficient_and_cost_what_the_estimators_say(shipped):
    d = shipped
    n = len(ST.PEPTIDE)
    perm = d["conv_estimator"] == ST.PERMUTATION
    # permutation sampling: P (n - 1) + 2 coalitions, a standard error; KernelSHAP: none, at most budget + 2
    np.testing.assert_array_equal(d["conv_coalitions"][perm], d["conv_budget"][perm] * (n - 1) + 2)
    assert np.all(d["conv_stderr"][perm] >= 0) and np.isnan(d["conv_stderr"][~perm]).all()
    assert np.all(d["conv_coalitions"][~perm] <= d["conv_budget"][~perm] + 2)
    # efficiency: every run's values add up to the same v(all) - v(none)
    sums = d["conv_values"].sum(axis=1)
    assert np.ptp(sums) < 1e-4
    # the agreement scores: exact Shapley values of the two games add up alike for every peptide
    scores = ST.agreement_scores(d)
    for i, s in scores.items():
        m = len(s["Shapley (interventional)"])
        assert 10 <= m <= 12 and all(v.shape == (m,) and np.isfinite(v).all() for v in s.values())


def test_small_script_reproduces_the_shipped_study(tmp_path, shipped):
    """`--small` reruns seed 0 of the grid and the shortest of the 8 peptides with the
    same code; it must match the shipped file's rows for them."""
    out = tmp_path / "small.npz"
    ST.main(["--small", "--out", str(out)])
    s, d = ST.load_study(out), shipped
    assert str(s["config_command"]) == "python -m helpers.shapley_study --small --out " + str(out)
    assert bool(s["config_small"]) and list(s["config_seeds"]) == [0]
    ship0 = d["conv_seed"] == 0
    for k in ("estimator", "budget", "seed", "coalitions"):
        np.testing.assert_array_equal(s[f"conv_{k}"], d[f"conv_{k}"][ship0])
    np.testing.assert_allclose(s["conv_values"], d["conv_values"][ship0], rtol=0, atol=SHIPPED_TOL)
    np.testing.assert_allclose(s["conv_stderr"], d["conv_stderr"][ship0], rtol=0, atol=SHIPPED_TOL)
    (i,) = s["agree_index"]
    lengths = [len(str(q)) for q in d["agree_sequence"]]
    p = int(np.argmin(lengths))
    assert int(d["agree_index"][p]) == int(i) and str(d["agree_sequence"][p]) == str(s["agree_sequence"][0])
    m = lengths[p]
    np.testing.assert_allclose(s["agree_scores"][0, :, :m], d["agree_scores"][p, :, :m], rtol=0, atol=SHIPPED_TOL)


def test_the_script_needs_a_flag_and_the_peptide_pick_is_by_length_and_logit():
    with pytest.raises(SystemExit):
        ST.main([])
    assert len(ST.agreement_peptides(np.arange(5.0), ["A" * 10] * 5, count=3)) == 3
    assert ST.agreement_peptides(np.array([0.0, 2.0, 1.0]), ["A" * 10, "A" * 9, "A" * 11]) == [2, 0]
