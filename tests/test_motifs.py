"""Filters as PWMs and the motif finder, against brute force and a planted motif."""

import numpy as np
import pytest

from helpers import motifs, synthetic
from helpers import sequences as seqs


def _toy_params(seed=0, k=5, c=3):
    rng = np.random.default_rng(seed)
    return {"toy/conv0": {"w": rng.normal(size=(k, 21, c)), "b": rng.normal(size=c)}}


def test_filter_scores_against_brute_force():
    params = _toy_params()
    x = seqs.encode_batch(["KWLKFAG", "GIGKFLHSAK"], length=12)
    z = motifs.filter_scores(params, x)
    w, b = params["toy/conv0"]["w"], params["toy/conv0"]["b"]
    for n in range(2):
        for i in range(12):
            want = b.copy()
            for j in range(5):
                if 0 <= i + j - 2 < 12:
                    want += w[j].T @ x[n, i + j - 2]
            np.testing.assert_allclose(z[n, i], want, atol=1e-12)


def test_filter_pwm_recovers_a_planted_word_and_softmax_is_log_odds():
    rng = np.random.default_rng(1)
    word = "KWLKF"
    peps = []
    for p in range(40):
        s = list(rng.choice(list("ACDEGHINPQRSTVY"), 15))
        if p < 10:
            s[3:8] = list(word)
        peps.append("".join(s))
    w = np.zeros((5, 21, 1))
    w[np.arange(5), [seqs.ALPHABET.index(a) for a in word], 0] = 1.0
    params = {"m/conv0": {"w": w, "b": np.zeros(1)}}
    pwm = motifs.filter_pwm(params, seqs.encode_batch(peps, length=16), top=10)[0]
    assert motifs.consensus(pwm) == word
    np.testing.assert_allclose(pwm.max(-1), 1.0)
    sm = motifs.softmax_pwm(_toy_params(), beta=2.0)  # log p - log p' = beta (w - w') within a row
    w0 = _toy_params()["toy/conv0"]["w"]
    np.testing.assert_allclose(np.log(sm[1, 2, 3] / sm[1, 2, 7]), 2.0 * (w0[2, 4, 1] - w0[2, 8, 1]), atol=1e-9)


def test_ablate_switches_one_filter_off_and_copies():
    params = _toy_params()
    out = motifs.ablate(params, 1, value=0.5)
    assert (out["toy/conv0"]["w"][:, :, 1] == 0).all() and out["toy/conv0"]["b"][1] == 0.5
    assert (params["toy/conv0"]["w"][:, :, 1] != 0).any()  # the original is untouched
    np.testing.assert_array_equal(out["toy/conv0"]["w"][:, :, 0], params["toy/conv0"]["w"][:, :, 0])
    with pytest.raises(ValueError, match="c must"):
        motifs.ablate(params, 3)


def test_motif_finder_recovers_a_planted_motif():
    # attribution 1 on the planted motif, small noise elsewhere: the largest cluster is the motif
    data = synthetic.planted_motif(300, seed=5)
    rng = np.random.default_rng(0)
    pos = np.flatnonzero(data.split.y == 1)
    seqs_pos = [data.split.sequences[i] for i in pos]
    scores = [0.1 * rng.normal(size=len(s)) + synthetic.motif_mask(data, i) for s, i in zip(seqs_pos, pos)]
    found = motifs.seqlets(scores, seqs_pos, width=6)
    clusters = motifs.cluster_seqlets([s.sequence for s in found], clusters=3, shift=2)  # width 6, motif 4: three offsets
    assert synthetic.MOTIF in motifs.consensus(clusters.pwms[0])
    assert clusters.sizes[0] >= 0.5 * len(found)
    # without signal there is no motif: shuffled scores give a low-information top cluster
    flat = [rng.normal(size=len(s)) for s in seqs_pos]
    noise_found = motifs.seqlets(flat, seqs_pos, width=6)
    noise = motifs.cluster_seqlets([s.sequence for s in noise_found], clusters=3)
    assert synthetic.MOTIF not in motifs.consensus(noise.pwms[0])
    # the share of motif-containing seqlets separates signal from noise (the chapter's measure)
    def top_share(words, cl):
        return np.mean([synthetic.MOTIF in s.sequence for s, g in zip(words, cl.labels) if g == 0])

    assert top_share(found, clusters) > 0.8 and top_share(noise_found, noise) < 0.5


def test_information_and_bad_input():
    np.testing.assert_allclose(motifs.information(np.full((2, 20), 0.05)), 0.0, atol=1e-12)
    np.testing.assert_allclose(motifs.information(np.eye(20)[:1]), np.log2(20))
    with pytest.raises(ValueError, match="words"):
        motifs.one_hot(["KW", "KWL"])
    with pytest.raises(ValueError, match="x must"):
        motifs.filter_scores(_toy_params(), np.zeros((3, 21)))
    with pytest.raises(ValueError, match="quantile"):
        motifs.seqlets([np.zeros(5)], ["KWLKF"], quantile=1.5)
    with pytest.raises(ValueError, match="conv0"):
        motifs.first_layer({"a": {}})


def test_best_windows_per_peptide_and_distinct_against_brute_force():
    params = _toy_params(seed=2, c=2)
    rng = np.random.default_rng(3)
    base = ["".join(rng.choice(list(seqs.AMINO_ACIDS), int(rng.integers(5, 12)))) for _ in range(12)]
    peps = base + base[:4]  # four exact analogues: their windows repeat
    x = seqs.encode_batch(peps, length=14)
    z = motifs.filter_scores(params, x)
    for c in range(2):
        # brute force: every window wholly inside a peptide, best first (ties in data order)
        cands = sorted(((-z[p, i, c], p, i) for p, s in enumerate(peps) for i in range(2, len(s) - 2)))
        per = {}
        for _, p, i in cands:
            per.setdefault(p, (p, i))  # the best window of each peptide
        per_list = sorted(per.values(), key=lambda t: -z[t[0], t[1], c])
        for flag_p, flag_d in ((False, False), (True, False), (False, True), (True, True)):
            src = per_list if flag_p else [(p, i) for _, p, i in cands]
            want, seen = [], set()
            for p, i in src:
                word = peps[p][i - 2 : i + 3]
                if flag_d and word in seen:
                    continue
                seen.add(word)
                want.append((p, i))
            got = motifs.best_windows(params, x, top=5, per_peptide=flag_p, distinct=flag_d)[c]
            assert [tuple(r) for r in got] == want[:5]
            words = motifs.window_words(x, got[None])[0]
            assert words == [peps[p][i - 2 : i + 3] for p, i in want[:5]]
            if flag_d:
                assert len(set(words)) == 5
            if flag_p:
                assert len(set(got[:, 0])) == 5
    # the default reproduces the old top-`top` rule, and the PWM is the windows' frequencies
    win = motifs.best_windows(params, x, top=6, per_peptide=True, distinct=True)
    pwm = motifs.filter_pwm(params, x, top=6, per_peptide=True, distinct=True)
    words = motifs.window_words(x, win)
    np.testing.assert_allclose(pwm[1], motifs.one_hot(words[1]).mean(0), atol=1e-12)
    with pytest.raises(ValueError, match="fewer than top"):
        motifs.best_windows(params, x, top=17, per_peptide=True)
    # a window past the start (it would wrap to the array's end) or onto padding is refused
    with pytest.raises(ValueError, match=r"must lie in \[0"):
        motifs.window_words(x, np.array([[[0, 1]]]))
    with pytest.raises(ValueError, match=r"windows\[0, 1\] = \(0, 13\)"):  # past the end (L = 14)
        motifs.window_words(x, np.array([[[0, 5], [0, 13]]]))
    pad = int(np.argmax(x[0, :, 0] == 1))  # the first padding row of peptide 0
    with pytest.raises(ValueError, match="padding or not one residue"):
        motifs.window_words(x, np.array([[[0, pad]]]))
    with pytest.raises(ValueError, match="integer"):
        motifs.window_words(x, np.array([[[0.0, 3.0]]]))
    with pytest.raises(TypeError, match="distinct"):
        motifs.filter_pwm(params, x, distinct="yes")


def test_information_against_a_background_and_the_logo_heights():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(20), size=4)
    q = rng.dirichlet(np.ones(20))
    # uniform background: log2(20) minus the entropy; a row equal to the background: 0 bits
    np.testing.assert_allclose(motifs.information(p, background=np.full(20, 0.05)), np.log2(20) + (p * np.log2(p)).sum(-1))
    np.testing.assert_allclose(motifs.information(np.stack([q, q]), background=q), 0.0, atol=1e-12)
    kl = (p * np.log2(p / q)).sum(-1)
    np.testing.assert_allclose(motifs.information(p, background=q), kl)
    # the logo's letters stack up to exactly that information (logomaker's transform)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers import plots

    ax = plots.logo(p, background=q)
    import logomaker
    import pandas as pd

    heights = logomaker.transform_matrix(pd.DataFrame(p, columns=list(seqs.AMINO_ACIDS)), from_type="probability",
                                         to_type="information", background=q).to_numpy().sum(1)
    np.testing.assert_allclose(heights, kl, atol=1e-6)
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="background"):
        motifs.information(p, background=np.ones(20))
    with pytest.raises(ValueError, match="background"):
        plots.logo(p, background=np.ones(3) / 3)
