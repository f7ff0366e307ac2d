import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import perturbation as P
from helpers import sequences as S

L = 24
SEQ = "KLWKLLKAGV"


def _x(seq=SEQ, length=L):
    return S.encode(seq, length=length)


def test_game_builds_the_hybrids_it_promises(additive, background_peptides):
    w, f = additive
    x = _x()
    bg = background_peptides[:5, :L]
    game = P.make_game(f, x, background=bg)
    mask = np.array([[True, False] * 5])
    hybrid = np.where(np.r_[mask[0], np.ones(L - 10, bool)][None, :, None], np.asarray(x)[None], bg)
    expected = np.asarray(f(jnp.asarray(hybrid))).mean()
    np.testing.assert_allclose(game(mask), [expected], rtol=1e-6)
    assert game.size == 5
    np.testing.assert_allclose(game.full, float(f(jnp.asarray(x)[None])[0]), rtol=1e-6)
    # padding positions keep x's rows: the empty coalition is the background cut to n residues
    cut = bg.copy()
    cut[:, 10:] = np.asarray(x)[10:]
    np.testing.assert_allclose(game.empty, np.asarray(f(jnp.asarray(cut))).mean(), rtol=1e-6)
    calls = game.calls
    game(np.ones((7, 10), bool))
    assert game.calls == calls + 7 * 5


def test_game_chunks_give_the_same_values(additive, background_peptides):
    _, f = additive
    masks = np.random.default_rng(1).random((37, 10)) < 0.5
    big = P.make_game(f, _x(), background=background_peptides[:8, :L])
    small = P.make_game(f, _x(), background=background_peptides[:8, :L], batch_size=24)
    np.testing.assert_allclose(big(masks), small(masks), rtol=1e-6)


def test_game_errors(additive, background_peptides):
    _, f = additive
    x = _x()
    with pytest.raises(ValueError, match="no background"):
        P.make_game(f, x)
    with pytest.raises(ValueError, match="background is empty"):
        P.make_game(f, x, background=np.zeros((0, L, 21)))
    with pytest.raises(ValueError, match="not both"):
        P.make_game(f, x, background=background_peptides[:2, :L], baseline="padding")
    with pytest.raises(ValueError, match=r"background must have shape \[M, 24, 21\]"):
        P.make_game(f, x, background=background_peptides[:2])
    with pytest.raises(ValueError, match="fill='mean' is not available here: it needs the training set"):
        P.make_game(f, x, baseline="mean")
    with pytest.raises(ValueError, match="NaN"):
        P.make_game(f, x, background=np.full((2, L, 21), np.nan))
    with pytest.raises(ValueError, match=r"masks must have shape \[C, 10\]"):
        P.make_game(f, x, baseline="padding")(np.ones((3, 9), bool))


def test_length_cut_is_exact_for_the_cnn_and_refused_for_a_model_that_counts_padding(cnn, background_peptides):
    _, f = cnn
    x = S.encode("GIGAVLKVLTTGL")
    masks = np.random.default_rng(0).random((20, 13)) < 0.5
    full = P.make_game(f, x, background=background_peptides[:16])
    cut = P.make_game(f, x, background=background_peptides[:16], length=15)
    np.testing.assert_allclose(full(masks), cut(masks), atol=1e-5)
    counts_padding = lambda xb: xb[:, :, 0].sum(axis=1)  # noqa: E731
    with pytest.raises(ValueError, match="depends on trailing padding"):
        P.make_game(counts_padding, x, baseline="zeros", length=15)
    with pytest.raises(ValueError, match="length must lie between"):
        P.make_game(f, x, baseline="zeros", length=5)


@pytest.mark.parametrize("fill", ["padding", "zeros"])
def test_occlusion_window_1_on_an_additive_model_equals_each_term(additive, additive_terms, fill):
    _, f = additive
    x = _x()
    scores = P.occlusion(f, x, window=1, fill=fill)
    np.testing.assert_allclose(scores, additive_terms(x, P.fill_reference(fill, x)), rtol=1e-5, atol=1e-5)


def test_occlusion_with_a_background_is_the_expected_drop(additive, additive_terms, background_peptides):
    _, f = additive
    x = _x()
    bg = background_peptides[:16, :L]
    scores = P.occlusion(f, x, window=1, fill=bg)
    np.testing.assert_allclose(scores, additive_terms(x, bg), rtol=1e-5, atol=1e-5)


def test_occlusion_windows_average_over_covering_windows(additive, additive_terms):
    _, f = additive
    x = _x()
    t = additive_terms(x, P.fill_reference("padding", x))
    scores = P.occlusion(f, x, window=3, stride=2)
    # windows start at 0, 2, 4, 6 and 7 (added to cover the last residue); drop = sum of terms
    starts = [0, 2, 4, 6, 7]
    drops = {s: t[s : s + 3].sum() for s in starts}
    expected = [np.mean([drops[s] for s in starts if s <= i < s + 3]) for i in range(10)]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_window_masks_and_errors():
    m = P.window_masks(5, 2, 2)
    assert m.tolist() == [[False, False, True, True, True], [True, True, False, False, True],
                          [True, True, True, False, False]]
    assert P.window_masks(3, 10).shape == (1, 3)  # a window longer than the peptide: all of it
    with pytest.raises(ValueError, match="window"):
        P.window_masks(5, 0)
    with pytest.raises(ValueError, match="stride"):
        P.window_masks(5, 1, 0)


def test_combined_score():
    np.testing.assert_allclose(P.combined_score([2.0, -1.0, 0.0], [0.0, 5.0, -10.0]), [0.5, -0.0, -0.5])
    np.testing.assert_allclose(P.normalise([0.0, 0.0]), [0.0, 0.0])
    with pytest.raises(ValueError, match="different lengths"):
        P.combined_score([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least two"):
        P.combined_score([1.0])
    with pytest.raises(ValueError, match="finite"):
        P.normalise([np.nan])


def test_splice_cuts_residues_out_and_pads_the_end():
    x = _x("KLWKA", length=8)
    masks = np.array([[True, False, True, False, True], [True] * 5, [False] * 5])
    out = P.splice(x, masks)
    assert out.shape == (3, 8, 21)
    assert S.decode(out[0]) == "KWA" and S.decode(out[1]) == "KLWKA"
    assert (out[2].argmax(-1) == 0).all() and (out.sum(-1) == 1).all()  # one-hot everywhere
    with pytest.raises(ValueError, match=r"masks must have shape \[C, 5\]"):
        P.splice(x, np.ones((2, 4), bool))


def test_delete_fill_is_the_model_on_the_shorter_peptide(additive):
    # brute force through strings: occlusion with fill="delete" is f(x) - f(x with residue i removed)
    _, f = additive
    x = _x()
    shorter = [S.encode(SEQ[:i] + SEQ[i + 1 :], length=L) for i in range(len(SEQ))]
    brute = float(f(jnp.asarray(x)[None])[0]) - np.asarray(f(jnp.asarray(np.stack(shorter))))
    np.testing.assert_allclose(P.occlusion(f, x, fill="delete"), brute, rtol=1e-5, atol=1e-5)
    # a window of 3 removes 3 consecutive residues
    drops = [float(f(jnp.asarray(x)[None])[0]) - float(f(jnp.asarray(S.encode(SEQ[:s] + SEQ[s + 3 :], length=L))[None])[0])
             for s in range(len(SEQ) - 2)]
    game = P.make_game(f, x, baseline="delete")
    np.testing.assert_allclose(game.full - game(P.window_masks(len(SEQ), 3)), drops, rtol=1e-5, atol=1e-5)
    assert isinstance(game, P.SpliceGame) and game.size == 1
    # the empty coalition is the all-padding input, as for masking in place
    np.testing.assert_allclose(game.empty, float(f(P.fill_reference("padding", x)[None])[0]), rtol=1e-6)


def test_delete_and_mask_in_place_agree_for_a_model_blind_to_position():
    # a composition model (one weight per channel, summed over positions) cannot tell a
    # padding row inside the sequence from one at the end: both fills give the same drops
    w = jnp.asarray(np.random.default_rng(0).normal(size=21), dtype=jnp.float32)
    f = jax.jit(lambda xb: (xb * w).sum(axis=(1, 2)))
    x = _x()
    np.testing.assert_allclose(P.occlusion(f, x, fill="delete"), P.occlusion(f, x, fill="padding"), atol=1e-5)
    np.testing.assert_allclose(P.occlusion(f, x, window=3, fill="delete"),
                               P.occlusion(f, x, window=3, fill="padding"), atol=1e-5)


def test_delete_game_with_a_length_cut_matches_the_full_length_on_the_cnn(cnn):
    _, f = cnn
    x = S.encode("GIGAVLKVLTTGL")
    masks = np.random.default_rng(2).random((20, 13)) < 0.5
    full = P.make_game(f, x, baseline="delete")
    cut = P.make_game(f, x, baseline="delete", length=15)
    np.testing.assert_allclose(full(masks), cut(masks), atol=1e-5)


def test_unsigned_combined_score():
    np.testing.assert_allclose(P.combined_score([2.0, -1.0, 0.0], [0.0, 5.0, -10.0], absolute=True), [0.5, 0.5, 0.5])
