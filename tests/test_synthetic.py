import numpy as np
import pytest

from helpers import sequences as S
from helpers import synthetic as SY


@pytest.fixture(scope="module")
def motif_data():
    return SY.planted_motif(600, seed=5)


def test_labels_are_motif_presence_and_balanced(motif_data):
    split = motif_data.split
    assert split.x.shape == (600, 190, 21)
    assert [SY.MOTIF in s for s in split.sequences] == list(split.y.astype(bool))
    assert 0.4 < split.y.mean() < 0.6
    assert S.decode_batch(split.x) == list(split.sequences)
    for i in np.flatnonzero(split.y)[:20]:
        start = motif_data.motif_start[i]
        assert split.sequences[i][start : start + 4] == SY.MOTIF
        assert SY.motif_mask(motif_data, i)[start : start + 4].all()
    for i, starts in enumerate(motif_data.decoy_starts[:50]):
        assert all(split.sequences[i][s : s + 4] == SY.DECOY for s in starts)


def test_both_classes_have_the_same_composition(motif_data):
    split = motif_data.split
    comp = S.composition(split.sequences)
    pos, neg = comp[split.y == 1].mean(axis=0), comp[split.y == 0].mean(axis=0)
    assert np.abs(pos - neg).max() < 0.015  # only the order of the planted residues differs


def test_same_seed_same_data_and_errors():
    a, b = SY.planted_motif(20, seed=1), SY.planted_motif(20, seed=1)
    assert a.split.sequences == b.split.sequences
    with pytest.raises(ValueError, match="reordering"):
        SY.planted_motif(5, seed=0, decoy="AAAA")
    with pytest.raises(ValueError, match="min_length"):
        SY.planted_motif(5, seed=0, min_length=4)


def test_the_and_task():
    d = SY.planted_pair(800, seed=4)
    split = d.split
    both = [SY.HALF_A in s and SY.HALF_B in s for s in split.sequences]
    assert both == list(split.y.astype(bool))
    assert (d.planted.all(axis=1) == split.y.astype(bool)).mean() > 0.99  # accidental halves are rare
    for combo in ((0, 0), (0, 1), (1, 0), (1, 1)):  # the four combinations equally likely
        assert 0.2 < (d.planted == combo).all(axis=1).mean() < 0.3
    for i in range(50):
        a, b = SY.pair_masks(d, i)
        seq = split.sequences[i]
        assert "".join(np.array(list(seq))[a]) == (SY.HALF_A if d.planted[i, 0] else SY.DECOY_A)
        assert "".join(np.array(list(seq))[b]) == (SY.HALF_B if d.planted[i, 1] else SY.DECOY_B)
        gap = abs(d.starts[i, 0] - d.starts[i, 1]) - len(SY.HALF_A)
        assert gap >= 4
    comp = S.composition(split.sequences)
    assert np.abs(comp[split.y == 1].mean(axis=0) - comp[split.y == 0].mean(axis=0)).max() < 0.015
    with pytest.raises(ValueError, match="min_gap"):
        SY.planted_pair(5, seed=0, min_length=8)


def test_the_and_game_splits_evenly():
    from helpers import shapley

    v = SY.and_game_values(shapley.all_coalitions(2))
    np.testing.assert_array_equal(v, [0, 0, 0, 1])
    np.testing.assert_allclose(shapley.shapley_from_values(v, 2), [0.5, 0.5])
    with pytest.raises(ValueError, match="masks"):
        SY.and_game_values(np.ones(3))
