"""The course's methods side by side with Captum, shap and lime: same model, same peptides.

    pip install -r benchmarks/requirements.txt     # torch (CPU), captum, shap, lime
    python benchmarks/compare_libraries.py [--peptides 10] [--repeats 3]

One process; prints a Markdown table (the README's "Side by side with established
libraries" section) and exits non-zero when an agreement check fails.

- Integrated gradients: ours (`helpers.attribution.integrated_gradients`, JAX) against
  Captum's `IntegratedGradients` on the course CNN ported to PyTorch with the same weights
  (`torch_cnn`, checked to give the same logits). Same path (padding baseline to x), same
  rule (midpoint, 64 points = Captum's `riemann_middle`): the attributions must agree to
  1e-4. Captum's `riemann_trapezoid` weights its n points 1 / n although they lie
  1 / (n - 1) apart (weights summing to (n - 1) / n): it must equal ours times 64 / 65.
- Shapley values of the residues (players; an absent residue becomes padding in place):
  ours (`helpers.shapley`) against shap's `Exact` and `Permutation` explainers, both
  driving the same value function (our predict function through `perturbation.make_game`).
  Exact must agree to 1e-6. The two permutation samplers (antithetic pairs, about the
  same budget) must differ by less than 5 of our estimator's standard errors (of the
  difference), and both are measured against the exact values.
- LIME: ours (`helpers.surrogate.lime`) against lime's `LimeTextExplainer` at character
  level (each residue one "word", removed residues masked in place), with lime's kernel
  fed our distance (the fraction of residues removed) so that both fit the same weighted
  ridge surrogate; they differ only in their random samples. Agreement: overlap of the
  top 3 residues, and the rank correlation of the coefficients.

Times are per explanation, after one warm-up call (JAX compiles, torch allocates), median
over `--repeats` runs; model calls count inputs the model saw. Both sides evaluate the model
on the full padded length L = 190; "cut" is ours with `length=n + 2` (inputs cut to the
peptide plus the first convolution's reach, which `perturbation.make_game` verifies leaves
the logits unchanged), a speed-up the libraries cannot know is safe.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from helpers import attribution, perturbation, shapley, surrogate  # noqa: E402
from helpers import data as data_lib  # noqa: E402
from helpers import model as model_lib  # noqa: E402
from helpers import sequences as seqs_lib  # noqa: E402

IG_STEPS = 64  # trapezoid intervals: 65 path points
IG_TOLERANCE = 1e-4
EXACT_TOLERANCE = 1e-6
PERMUTATION_PAIRS = 32  # antithetic pairs per explanation, both samplers
LIME_SAMPLES = 5000  # lime's default
LIME_WIDTH = 0.25  # ours, in the fraction of residues removed
TOP_K = 3


# ----------------------------------------------------------------------------- the port


def torch_cnn(params):
    """The course CNN (`helpers.model.HemolysisCNN`, tanh) as a `torch.nn.Module` holding
    the same weights: `module(x [B, L, A] float32) -> logits [B]`."""
    import torch
    import torch.nn.functional as F

    def conv_weight(name):
        p = params[f"hemolysis_cnn/~features/{name}"]
        # haiku Conv1D: w [k, in, out]; torch: [out, in, k] (both cross-correlate)
        return torch.tensor(np.asarray(p["w"]).transpose(2, 1, 0)), torch.tensor(np.asarray(p["b"]))

    def pool(v, size, kind):  # v [B, C, L]; pad at the end only, as `model._pool`
        v = F.pad(v, (0, -v.shape[-1] % size))
        return F.max_pool1d(v, size) if kind == "max" else F.avg_pool1d(v, size)

    def smooth_max1(n):
        return torch.where(n >= 1.0, n, 0.5 * (n * n + 1.0))

    class TorchCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ParameterList()
            for i in range(3):
                w, b = conv_weight(f"conv{i}")
                self.convs.append(torch.nn.Parameter(w, requires_grad=False))
                self.convs.append(torch.nn.Parameter(b, requires_grad=False))
            self.dense = torch.nn.ParameterList(
                torch.nn.Parameter(torch.tensor(np.asarray(params[f"hemolysis_cnn/{n}"]["w"])), requires_grad=False)
                for n in ("dense0", "dense1", "logit")
            )

        def forward(self, x):  # [B, L, A] -> [B]
            m = x[..., 1:].sum(-1)[:, None, :]  # [B, 1, L]
            h = x.transpose(1, 2)  # [B, A, L]
            for i, p in enumerate((4, 2, 2)):
                w, b = self.convs[2 * i], self.convs[2 * i + 1]
                h = (torch.tanh(F.conv1d(h, w, b, padding=(w.shape[-1] - 1) // 2)) - model_lib.ACTIVATION_FLOOR) * m
                h = pool(h, p, "max")
                m = pool(m, p, "avg")
            counts = x[..., 1:].sum(1)  # [B, 20]
            n = counts.sum(-1, keepdim=True)
            h_max = F.max_pool1d(h, h.shape[-1])[..., 0]
            h_mean = h.sum(-1) / smooth_max1(m.sum(-1))
            feats = torch.cat([h_max, h_mean, counts / smooth_max1(n), n / model_lib.LENGTH_SCALE], -1)
            for w in self.dense[:-1]:
                feats = torch.tanh(feats @ w)
            return (feats @ self.dense[-1])[..., 0]

    return TorchCNN().eval()


# ----------------------------------------------------------------------------- helpers


def timed(fn: Callable, repeats: int) -> tuple[object, float]:
    """`fn()` once to warm up, then `repeats` times: (last result, median seconds)."""
    fn()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def pick_peptides(count: int, *, min_len: int = 2, max_len: int = 190) -> list[str]:
    """`count` test-set peptides with min_len..max_len residues, evenly spread over the
    sorted split (deterministic)."""
    seqs = [s for s in data_lib.load_split("test").sequences if min_len <= len(s) <= max_len]
    idx = np.linspace(0, len(seqs) - 1, count).round().astype(int)
    return [seqs[i] for i in idx]


# ----------------------------------------------------------------------------- IG


def compare_ig(f, module, peptides: list[str], repeats: int) -> dict:
    """Ours vs Captum's IntegratedGradients on every peptide, from the padding baseline.

    Timed and held to 1e-4: the midpoint rule with 64 points (Captum's `riemann_middle`).
    Also measured: the trapezoid rule with 65 points, where Captum weights each point 1 / 65
    (the two ends 1 / 130) although the points lie 1 / 64 apart: its weights sum to 64 / 65,
    so its attributions are ours times 64 / 65 (`trapezoid_ratio`) and its completeness gap
    is off by 1 / 65 of f(x) - f(baseline)."""
    import torch
    from captum.attr import IntegratedGradients

    x = seqs_lib.encode_batch(peptides)  # [N, L, A]
    base = np.stack([np.asarray(attribution.make_baseline("padding", xi)) for xi in x])
    logits_gap = float(np.abs(module(torch.tensor(x)).detach().numpy() - np.asarray(f(jnp.asarray(x)))).max())
    ig = IntegratedGradients(module)
    xt, bt = torch.tensor(x), torch.tensor(base)

    def ours(rule="midpoint"):
        return np.stack([np.asarray(attribution.integrated_gradients(
            f, xi, bi, steps=IG_STEPS, rule=rule).attributions) for xi, bi in zip(x, base, strict=True)])

    def captum(method="riemann_middle", points=IG_STEPS):
        return np.stack([ig.attribute(xt[i : i + 1], bt[i : i + 1], n_steps=points, method=method)
                         .detach().numpy()[0] for i in range(len(x))])

    a_ours, t_ours = timed(ours, repeats)
    a_captum, t_captum = timed(captum, repeats)
    trap_ours = ours("trapezoid")
    trap_captum = captum("riemann_trapezoid", IG_STEPS + 1)
    return {"max_abs_diff": float(np.abs(a_ours - a_captum).max()), "scale": float(np.abs(a_ours).max()),
            "logits_gap": logits_gap,
            "trapezoid_ratio": float(trap_captum.sum() / trap_ours.sum()),
            "trapezoid_rescaled_diff": float(np.abs(trap_captum * (IG_STEPS + 1) / IG_STEPS - trap_ours).max()),
            "t_ours": t_ours / len(x), "t_ref": t_captum / len(x), "calls_ours": IG_STEPS + 2,
            "calls_ref": IG_STEPS, "n": len(x)}


# ----------------------------------------------------------------------------- Shapley


class Counted:
    """The value function `v(masks [C, n] 0/1) -> [C]` that shap drives: our game, counting
    the coalitions it is asked for."""

    def __init__(self, game):
        self.game = game
        self.calls = 0

    def __call__(self, z):
        z = np.asarray(z)
        self.calls += len(z)
        return self.game(z > 0.5)


def shap_values(kind: str, v: Counted, n: int, *, seed: int = 0) -> np.ndarray:
    """shap's `Exact` or `Permutation` explainer over n binary players (absent = 0)."""
    import shap

    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    ones = np.ones((1, n))
    if kind == "exact":
        return np.asarray(shap.explainers.Exact(v, masker)(ones).values[0])
    explainer = shap.explainers.Permutation(v, masker, seed=seed)
    return np.asarray(explainer(ones, max_evals=PERMUTATION_PAIRS * (2 * n + 1), silent=True).values[0])


def compare_shapley(f, peptides: list[str], repeats: int) -> dict:
    """Exact (ours vs shap Exact) and sampled (ours vs shap Permutation) on every peptide."""
    x = seqs_lib.encode_batch(peptides)
    games = [perturbation.make_game(f, xi, baseline="padding") for xi in x]
    out = {"exact_diff": 0.0, "t_exact_ours": 0.0, "t_exact_cut": 0.0, "t_perm_cut": 0.0, "t_exact_ref": 0.0, "calls_exact_ours": 0, "calls_exact_ref": 0,
           "t_perm_ours": 0.0, "t_perm_ref": 0.0, "calls_perm_ours": 0, "calls_perm_ref": 0,
           "err_ours": [], "err_ref": [], "z_max": 0.0, "n": len(x)}
    for seed, (xi, game) in enumerate(zip(x, games, strict=True)):
        n = game.n
        exact, t = timed(lambda xi=xi: shapley.shapley_exact(f, xi, baseline="padding"), repeats)
        out["t_exact_ours"] += t
        out["calls_exact_ours"] += exact.model_calls
        _, t = timed(lambda xi=xi, n=n: shapley.shapley_exact(f, xi, baseline="padding", length=n + 2), repeats)
        out["t_exact_cut"] += t
        v = Counted(game)
        ref, t = timed(lambda v=v, n=n: shap_values("exact", v, n), repeats)
        out["t_exact_ref"] += t
        out["calls_exact_ref"] += v.calls // (repeats + 1)
        out["exact_diff"] = max(out["exact_diff"], float(np.abs(exact.values - ref).max()))

        key = jax.random.PRNGKey(seed)
        perm, t = timed(lambda xi=xi, key=key: shapley.shapley_permutation(
            f, xi, key, n_permutations=2 * PERMUTATION_PAIRS, baseline="padding"), repeats)
        out["t_perm_ours"] += t
        out["calls_perm_ours"] += perm.model_calls
        _, t = timed(lambda xi=xi, key=key, n=n: shapley.shapley_permutation(
            f, xi, key, n_permutations=2 * PERMUTATION_PAIRS, baseline="padding", length=n + 2), repeats)
        out["t_perm_cut"] += t
        v = Counted(game)
        ref, t = timed(lambda v=v, n=n, seed=seed: shap_values("permutation", v, n, seed=seed), repeats)
        out["t_perm_ref"] += t
        out["calls_perm_ref"] += v.calls // (repeats + 1)
        # Both are unbiased means over antithetic pairs: judge each, and their difference,
        # in units of our estimator's standard error (the same sampler, the same budget).
        se = np.maximum(perm.stderr, 1e-9)
        out["err_ours"].append(float(np.abs(perm.values - exact.values).max()))
        out["err_ref"].append(float(np.abs(ref - exact.values).max()))
        out["z_max"] = max(out["z_max"], float((np.abs(perm.values - ref) / (np.sqrt(2) * se)).max()))
    k = len(x)
    for name in ("t_exact_ours", "t_exact_ref", "t_perm_ours", "t_perm_ref", "t_exact_cut", "t_perm_cut"):
        out[name] /= k
    for name in ("calls_exact_ours", "calls_exact_ref", "calls_perm_ours", "calls_perm_ref"):
        out[name] = out[name] / k
    out["err_ours"], out["err_ref"] = float(np.mean(out["err_ours"])), float(np.mean(out["err_ref"]))
    return out


# ----------------------------------------------------------------------------- LIME


def lime_package(f, seq: str, *, seed: int) -> tuple[np.ndarray, int]:
    """lime's LimeTextExplainer on the residues of `seq`: coefficients `[n]` of the logit,
    and the number of peptides the model saw."""
    from lime.lime_text import LimeTextExplainer

    n = len(seq)
    length = seqs_lib.DEFAULT_LENGTH
    lut = seqs_lib._CODES  # byte -> channel; any other byte (lime's mask, chr(0)) -> 0, padding
    calls = [0]

    def classifier_fn(strings):  # list of S strings of n characters -> [S, 2]
        idx = np.zeros((len(strings), length), np.int32)
        idx[:, :n] = lut[np.frombuffer("".join(strings).encode(), np.uint8).reshape(len(strings), n)]
        logits = np.asarray(f(jax.nn.one_hot(idx, seqs_lib.NUM_CHANNELS)), dtype=np.float64)
        calls[0] += len(strings)
        return np.stack([-logits, logits], axis=1)  # lime regresses column 1: the logit, as ours

    def kernel(d, kernel_width):
        # lime's distance is 100 x cosine distance of the 0/1 vector to all-ones,
        # 100 (1 - sqrt(kept / n)); turn it back into the fraction removed, ours
        removed = 1.0 - (1.0 - np.asarray(d) / 100.0) ** 2
        return np.sqrt(np.exp(-(removed**2) / kernel_width**2))

    explainer = LimeTextExplainer(kernel_width=LIME_WIDTH, kernel=kernel, bow=False, char_level=True,
                                  feature_selection="none", random_state=seed)
    exp = explainer.explain_instance(seq, classifier_fn, labels=(1,), num_features=n, num_samples=LIME_SAMPLES)
    coef = np.zeros(n)
    for i, c in exp.local_exp[1]:
        coef[i] = c
    return coef, calls[0]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def compare_lime(f, peptides: list[str], repeats: int) -> dict:
    x = seqs_lib.encode_batch(peptides)
    out = {"t_ours": 0.0, "t_cut": 0.0, "t_ref": 0.0, "calls_ours": 0, "calls_ref": 0, "overlap": [], "rho": [], "n": len(x)}
    for i, (xi, seq) in enumerate(zip(x, peptides, strict=True)):
        ours, t = timed(lambda xi=xi, i=i: surrogate.lime(f, xi, jax.random.PRNGKey(i), n_samples=LIME_SAMPLES,
                                                          kernel_width=LIME_WIDTH), repeats)
        out["t_ours"] += t
        out["calls_ours"] += ours.model_calls
        cut = len(seq) + 2
        _, t = timed(lambda xi=xi, i=i, cut=cut: surrogate.lime(
            f, xi, jax.random.PRNGKey(i), n_samples=LIME_SAMPLES, kernel_width=LIME_WIDTH, length=cut), repeats)
        out["t_cut"] += t
        (ref, calls), t = timed(lambda seq=seq, i=i: lime_package(f, seq, seed=i), repeats)
        out["t_ref"] += t
        out["calls_ref"] += calls
        top_ours = set(np.argsort(-ours.coefficients)[:TOP_K])
        top_ref = set(np.argsort(-ref)[:TOP_K])
        out["overlap"].append(len(top_ours & top_ref) / TOP_K)
        out["rho"].append(spearman(ours.coefficients, ref))
    k = len(x)
    for name in ("t_ours", "t_cut", "t_ref", "calls_ours", "calls_ref"):
        out[name] /= k
    out["overlap"], out["rho_min"], out["rho"] = float(np.mean(out["overlap"])), float(np.min(out["rho"])), float(np.mean(out["rho"]))
    return out


# ----------------------------------------------------------------------------- main


def machine() -> str:
    import torch

    return (f"{platform.machine()} CPU, {jax.local_device_count()} JAX device, "
            f"{torch.get_num_threads()} torch threads; Python {platform.python_version()}, "
            f"jax {jax.__version__}, torch {torch.__version__}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peptides", type=int, default=10, help="test-set peptides per method")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per explanation (median)")
    a = p.parse_args(argv)

    from importlib.metadata import version

    params, _ = model_lib.load_pretrained()
    f = model_lib.predict_fn(params)
    module = torch_cnn(params)
    ig = compare_ig(f, module, pick_peptides(a.peptides), a.repeats)
    sh = compare_shapley(f, pick_peptides(a.peptides, min_len=8, max_len=12), a.repeats)
    li = compare_lime(f, pick_peptides(a.peptides, min_len=8), a.repeats)

    def ms(t):
        return f"{1e3 * t:.1f} ms"

    rows = [
        (f"Integrated gradients, midpoint rule, 64 points (Captum {version('captum')} `IntegratedGradients`, `riemann_middle`, on a PyTorch port)",
         f"max abs diff {ig['max_abs_diff']:.1e} (largest attribution {ig['scale']:.2f}; the port's logits differ by {ig['logits_gap']:.1e}). "
         f"Trapezoid rule, 65 points: Captum's sum is {ig['trapezoid_ratio']:.4f} of ours (64 / 65 = {64 / 65:.4f}); rescaled, max abs diff {ig['trapezoid_rescaled_diff']:.1e}",
         ms(ig["t_ours"]), ms(ig["t_ref"]), f"{ig['calls_ours']} / {ig['calls_ref']}", ig["t_ref"] / ig["t_ours"]),
        (f"Exact Shapley, 8-12 residues (shap {version('shap')} `Exact`)",
         f"max abs diff {sh['exact_diff']:.1e}",
         f"{ms(sh['t_exact_ours'])} ({ms(sh['t_exact_cut'])} cut)", ms(sh["t_exact_ref"]), f"{sh['calls_exact_ours']:.0f} / {sh['calls_exact_ref']:.0f}",
         sh["t_exact_ref"] / sh["t_exact_ours"]),
        (f"Permutation Shapley, {PERMUTATION_PAIRS} antithetic pairs (shap `Permutation`)",
         f"largest error vs exact (mean over peptides): ours {sh['err_ours']:.3f}, shap {sh['err_ref']:.3f}; largest difference {sh['z_max']:.1f} standard errors",
         f"{ms(sh['t_perm_ours'])} ({ms(sh['t_perm_cut'])} cut)", ms(sh["t_perm_ref"]), f"{sh['calls_perm_ours']:.0f} / {sh['calls_perm_ref']:.0f}",
         sh["t_perm_ref"] / sh["t_perm_ours"]),
        (f"LIME, {LIME_SAMPLES} samples, same kernel (lime {version('lime')} `LimeTextExplainer`, char level)",
         f"top-{TOP_K} overlap {li['overlap']:.0%}; Spearman {li['rho']:.2f} (lowest {li['rho_min']:.2f})",
         f"{ms(li['t_ours'])} ({ms(li['t_cut'])} cut)", ms(li["t_ref"]), f"{li['calls_ours']:.0f} / {li['calls_ref']:.0f}", li["t_ref"] / li["t_ours"]),
    ]
    print(f"Machine: {machine()}; captum {version('captum')}. {a.peptides} test peptides per method, "
          f"median of {a.repeats} runs after a warm-up; ratios use our time at the full length L = 190.\n")
    print("| method (reference) | agreement | ours per explanation | reference | model calls (ours / ref) | reference / ours |")
    print("|---|---|---|---|---|---|")
    for name, agree, t_o, t_r, calls, ratio in rows:
        print(f"| {name} | {agree} | {t_o} | {t_r} | {calls} | {ratio:.1f}x |")

    failures = []
    if ig["max_abs_diff"] > IG_TOLERANCE:
        failures.append(f"IG differs from Captum's by {ig['max_abs_diff']:.2g} > {IG_TOLERANCE}")
    if ig["trapezoid_rescaled_diff"] > IG_TOLERANCE:
        failures.append(f"IG (trapezoid) differs from Captum's x 65 / 64 by {ig['trapezoid_rescaled_diff']:.2g} > {IG_TOLERANCE}")
    if sh["exact_diff"] > EXACT_TOLERANCE:
        failures.append(f"exact Shapley differs from shap's by {sh['exact_diff']:.2g} > {EXACT_TOLERANCE}")
    if sh["z_max"] > 5:
        failures.append(f"permutation Shapley differs from shap's by {sh['z_max']:.1f} standard errors (> 5)")
    if li["rho_min"] < 0.8:
        failures.append(f"LIME coefficients' rank correlation with lime's drops to {li['rho_min']:.2f} (< 0.8)")
    for msg in failures:
        print("FAILED:", msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
