import numpy as np
import pytest

from helpers import sequences as S

MELITTIN = "GIGAVLKVLTTGLPALISWIKRKRQQ"


def test_alphabet_matches_dbaasp_order():
    assert S.ALPHABET == "-ARNDCQEGHILKMFPSTWYV"
    assert S.NUM_CHANNELS == 21 and S.DEFAULT_LENGTH == 190


def test_encode_shape_dtype_and_padding_channel():
    x = S.encode("ACK")
    assert x.shape == (190, 21) and x.dtype == np.float32
    assert x.sum() == 190  # exactly one channel set per position
    assert list(x[:3].argmax(-1)) == [1, 5, 12]  # A, C, K
    assert (x[3:, 0] == 1).all()  # trailing padding sets channel 0


def test_roundtrip_single_and_batch():
    assert S.decode(S.encode(MELITTIN)) == MELITTIN
    seqs = [MELITTIN, "K", "W" * 190]
    assert S.decode_batch(S.encode_batch(seqs)) == seqs
    assert S.encode_batch(seqs).shape == (3, 190, 21)


def test_case_and_whitespace_are_normalised():
    assert S.decode(S.encode("  gigav\n")) == "GIGAV"


def test_custom_length():
    assert S.encode("ACD", length=5).shape == (5, 21)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("ACDX", r"'X' at position 4"),
        ("AC D", r"' ' at position 3"),
        ("", "empty sequence"),
        ("   ", "empty sequence"),
        (None, "expected a peptide as a string"),
        (["ACD"], "expected a peptide as a string"),
        ("A" * 191, "length 191 is longer than the limit L = 190"),
    ],
)
def test_encode_errors_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        S.encode(bad)


def test_batch_errors_name_the_item():
    with pytest.raises(ValueError, match=r"sequence #1: invalid residue 'B' at position 2"):
        S.encode_batch(["ACD", "AB"])
    with pytest.raises(ValueError, match="use encode"):
        S.encode_batch("ACD")


def test_bad_length_argument():
    with pytest.raises(ValueError, match="positive integer"):
        S.encode("A", length=0)


def test_decode_rejects_non_one_hot():
    x = S.encode("ACD")
    with pytest.raises(ValueError, match=r"shape \[L, 21\]"):
        S.decode(x[:, :20])
    with pytest.raises(ValueError, match="shape"):
        S.decode(x[None])
    soft = x.copy()
    soft[1] = 0.5 * soft[1] + 0.5 * soft[2]
    with pytest.raises(ValueError, match="not a one-hot encoding at position 2"):
        S.decode(soft)
    with pytest.raises(ValueError, match="not a one-hot"):
        S.decode(np.zeros((190, 21), np.float32))
    nan = x.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        S.decode(nan)
    gap = S.encode("ACD")
    gap[1] = np.eye(21)[0]
    with pytest.raises(ValueError, match="padding must come after"):
        S.decode(gap)
    with pytest.raises(ValueError, match="item 1, position 1"):
        S.decode_batch(np.stack([x, np.zeros_like(x)]))


def test_indices_to_strings_and_lengths():
    idx = np.array([[1, 2, 0, 0], [20, 0, 0, 0]])
    assert S.indices_to_strings(idx) == ["AR", "V"]
    assert list(S.lengths(S.encode_batch(["AR", "V", MELITTIN]))) == [2, 1, 26]
    with pytest.raises(ValueError):
        S.indices_to_strings(np.array([[21, 0]]))


def test_pooled_composition_and_composition_features_by_hand():
    pooled = S.pooled_composition(["AAK", "KW"])  # 5 residues: A 2, K 2, W 1
    assert pooled[S.AMINO_ACIDS.index("A")] == pytest.approx(0.4)
    assert pooled[S.AMINO_ACIDS.index("K")] == pytest.approx(0.4)
    assert pooled[S.AMINO_ACIDS.index("W")] == pytest.approx(0.2) and pooled.sum() == pytest.approx(1.0)
    feats = S.composition_features(S.encode_batch(["AAK", "KW"], length=5))
    assert feats.shape == (2, 21)
    np.testing.assert_allclose(feats[:, :20].sum(axis=1), 1.0)
    np.testing.assert_allclose(feats[:, 20], [0.03, 0.02])
    assert feats[0, S.AMINO_ACIDS.index("A")] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="empty"):
        S.pooled_composition(["AAK", ""])
    with pytest.raises(ValueError, match=r"\[B, L, 21\]"):
        S.composition_features(np.zeros((5, 21)))


def test_composition_rows_sum_to_one():
    c = S.composition(["AAK", "W"])
    assert c.shape == (2, 20)
    np.testing.assert_allclose(c.sum(1), 1.0)
    assert c[0, S.AMINO_ACIDS.index("A")] == pytest.approx(2 / 3)
