import numpy as np
import pytest
from sklearn import metrics as skm

from helpers import metrics as M


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(y + rng.normal(0, 1.2, 300), 1)  # rounding makes ties
    return y, s


def test_auroc_matches_sklearn_with_ties(sample):
    y, s = sample
    assert M.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auroc_extremes():
    assert M.auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert M.auroc(np.array([0, 0, 1, 1]), np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert M.auroc(np.array([0, 1, 0, 1]), np.zeros(4)) == 0.5


def test_roc_curve_matches_sklearn(sample):
    y, s = sample
    fpr, tpr, _ = M.roc_curve(y, s)
    f2, t2, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.auroc(y, s))


def test_average_precision_matches_sklearn_with_ties(sample):
    y, s = sample
    assert M.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert M.average_precision(y, np.zeros(len(y))) == pytest.approx(y.mean())  # constant score
    assert M.average_precision(np.array([0, 1, 1]), np.array([0.1, 0.8, 0.9])) == 1.0
    with pytest.raises(ValueError, match="at least one positive"):
        M.average_precision(np.zeros(3, int), np.arange(3.0))


def test_threshold_metrics_match_sklearn(sample):
    y, s = sample
    m = M.classification_metrics(y, s - 0.5)
    pred = (s - 0.5 > 0).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    np.testing.assert_array_equal(M.confusion(y, pred), skm.confusion_matrix(y, pred))


def test_constant_predictor_has_zero_mcc_and_half_auroc():
    y = np.array([0, 0, 0, 1])
    m = M.classification_metrics(y, -np.ones(4))
    assert m == {"accuracy": 0.75, "balanced_accuracy": 0.5, "mcc": 0.0, "auroc": 0.5}


def test_bad_input():
    with pytest.raises(ValueError, match="both classes"):
        M.auroc(np.ones(3, int), np.arange(3.0))
    with pytest.raises(ValueError, match="NaN"):
        M.auroc(np.array([0, 1]), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="equal length"):
        M.auroc(np.array([0, 1]), np.zeros(3))
    with pytest.raises(ValueError, match="0 or 1"):
        M.auroc(np.array([0, 2]), np.zeros(2))


def test_precision_at_k_on_a_hand_made_case():
    truth = np.array([False, True, True, False, False])
    assert M.precision_at_k([0.1, 0.9, 0.8, 0.2, 0.0], truth) == 1.0
    assert M.precision_at_k([0.9, 0.1, 0.8, 0.2, 0.0], truth) == 0.5
    assert M.precision_at_k([0.9, 0.1, 0.8, 0.2, 0.0], truth, k=1) == 0.0
    assert M.precision_at_k([0.0] * 5, truth) == 0.5  # ties: the first k positions
    with pytest.raises(ValueError, match="k must lie between"):
        M.precision_at_k([0.0] * 5, np.zeros(5, bool))
    with pytest.raises(ValueError, match="NaN"):
        M.precision_at_k([np.nan] * 5, truth)


def test_bootstrap_standard_error_matches_the_closed_form():
    # The mean score of the positives: its bootstrap s.e. is std / sqrt(n) (ddof 0).
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(80, int), np.zeros(120, int)]
    s = rng.normal(size=200)
    stats = M.bootstrap(lambda yy, ss: ss[yy == 1].mean(), y, s, n_resamples=4000, seed=0)
    assert stats.std() == pytest.approx(s[:80].std() / np.sqrt(80), rel=0.05)
    # Stratified: every resample keeps the class counts.
    counts = M.bootstrap(lambda yy, ss: yy.sum(), y, s, n_resamples=50, seed=0)
    assert (counts == 80).all()


def test_bootstrap_is_seeded_and_brackets_the_auroc(sample):
    y, s = sample
    a = M.bootstrap(M.auroc, y, s, n_resamples=300, seed=3)
    np.testing.assert_array_equal(a, M.bootstrap(M.auroc, y, s, n_resamples=300, seed=3))
    lo, hi = np.percentile(a, [2.5, 97.5])
    assert lo < M.auroc(y, s) < hi


def test_bootstrap_bad_input():
    y, s = np.array([0, 1, 0, 1]), np.arange(4.0)
    with pytest.raises(TypeError, match="statistic must be a function"):
        M.bootstrap("auroc", y, s)
    with pytest.raises(ValueError, match="n_resamples must be a positive integer"):
        M.bootstrap(M.auroc, y, s, n_resamples=0)
    with pytest.raises(ValueError, match="both classes"):
        M.bootstrap(M.auroc, np.zeros(4, int), s)


def test_paired_bootstrap_is_the_difference_on_shared_resamples(sample):
    y, s = sample
    rng = np.random.default_rng(2)
    other = s + rng.normal(0, 1.0, len(s))
    d = M.paired_bootstrap(M.auroc, y, s, other, n_resamples=200, seed=5)
    # the same resamples as bootstrap with the same seed: the difference of the two runs
    np.testing.assert_allclose(
        d, M.bootstrap(M.auroc, y, s, n_resamples=200, seed=5) - M.bootstrap(M.auroc, y, other, n_resamples=200, seed=5)
    )
    # identical scores: every difference is exactly 0; a shift of the scores changes no AUROC
    assert (M.paired_bootstrap(M.auroc, y, s, s + 3.0, n_resamples=50, seed=0) == 0).all()
    # pairing removes the shared part: the paired spread is below the unpaired one here
    unpaired = M.bootstrap(M.auroc, y, s, n_resamples=200, seed=5) - M.bootstrap(M.auroc, y, other, n_resamples=200, seed=6)
    assert d.std() < unpaired.std()


def test_paired_bootstrap_bad_input():
    y, s = np.array([0, 1, 0, 1]), np.arange(4.0)
    with pytest.raises(ValueError, match="scores_b must have the shape of y"):
        M.paired_bootstrap(M.auroc, y, s, np.zeros(3))
    with pytest.raises(TypeError, match="statistic must be a function"):
        M.paired_bootstrap(None, y, s, s)
    with pytest.raises(ValueError, match="n_resamples must be a positive integer"):
        M.paired_bootstrap(M.auroc, y, s, s, n_resamples=-1)
    with pytest.raises(ValueError, match="both classes"):
        M.paired_bootstrap(M.auroc, np.ones(4, int), s, s)
