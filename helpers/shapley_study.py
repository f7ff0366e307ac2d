"""Chapter 7's shipped studies: the convergence grid of the two Shapley estimators on the
10-residue peptide (8 seeds x 6 budgets each) and every attribution method on the 8 short
test peptides the model scores highest.

`python -m helpers.shapley_study --write` recomputes both with the chapter's model, background
and seeds and writes `helpers/pretrained/shapley_study.npz` (command, seeds and settings as
`config_*`); `--small` runs one seed and one peptide of the same code path (tests).

Shape glossary: R runs of the grid, n residues of the peptide, P peptides, K methods,
m_p residues of peptide p (its method scores are stored padded to the longest, NaN after).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from helpers import attribution, perturbation, shapley

FILE = "shapley_study.npz"
COMMAND = "python -m helpers.shapley_study --write"
PEPTIDE = "GLLKRIKKLL"  # the chapter's 10-residue test peptide
BACKGROUND_SIZE = 64
BACKGROUND_SEED = 0
SEEDS = tuple(range(8))
PERM_BUDGETS = (4, 8, 16, 24, 32, 64)
KERNEL_BUDGETS = (16, 32, 64, 128, 256, 512)
N_PEPTIDES = 8
LENGTHS = (10, 12)  # residues of the agreement peptides
PERMUTATION, KERNEL = "permutation (antithetic)", "KernelSHAP"
METHODS = (
    "gradient × input", "IG (zero)", "IG (padding)", "SmoothGrad (g × x)", "DeepLIFT (zero)",
    "occlusion (mask in place)", "occlusion (background)", "Shapley (mask-in-place game)",
    "Shapley (interventional)",
)


def chapter_background(train_x: np.ndarray, *, size: int = BACKGROUND_SIZE, seed: int = BACKGROUND_SEED) -> np.ndarray:
    """`[M, L, A]`: the chapter's background, `size` training peptides drawn without
    replacement by `np.random.default_rng(seed)`."""
    return train_x[np.random.default_rng(seed).choice(len(train_x), size, replace=False)]


def convergence_runs(predict, x, background, *, seeds=SEEDS, perm_budgets=PERM_BUDGETS,
                     kernel_budgets=KERNEL_BUDGETS) -> dict[str, np.ndarray]:
    """The grid of chapter 7's convergence section on the peptide `x [L, A]`: permutation
    sampling (antithetic) at every budget of `perm_budgets` orders and KernelSHAP at every
    budget of `kernel_budgets` coalitions, each with `jax.random.PRNGKey(seed)` for every seed,
    in the chapter's order. Returns `estimator [R]`, `budget [R]`, `seed [R]`, `coalitions [R]`,
    `values [R, n]` and `stderr [R, n]` (NaN for KernelSHAP, which reports none)."""
    n = attribution.num_residues(np.asarray(x))
    rows = []
    for budget in perm_budgets:
        for s in seeds:
            r = shapley.shapley_permutation(predict, x, jax.random.PRNGKey(s), n_permutations=budget,
                                            background=background, length=n + 2)
            rows.append((PERMUTATION, budget, s, r.coalitions, r.values, r.stderr))
    for budget in kernel_budgets:
        for s in seeds:
            r = shapley.kernel_shap(predict, x, jax.random.PRNGKey(s), n_samples=budget,
                                    background=background, length=n + 2)
            rows.append((KERNEL, budget, s, r.coalitions, r.values, np.full(n, np.nan)))
    est, bud, sd, co, va, se = zip(*rows)
    return {"estimator": np.array(est), "budget": np.array(bud), "seed": np.array(sd),
            "coalitions": np.array(co), "values": np.stack(va), "stderr": np.stack(se)}


def agreement_peptides(logits, sequences, *, count: int = N_PEPTIDES, lengths=LENGTHS) -> list[int]:
    """Indices of the `count` peptides with `lengths[0] <= residues <= lengths[1]` that have
    the highest logits, highest first."""
    return [int(i) for i in np.argsort(-np.asarray(logits)) if lengths[0] <= len(sequences[i]) <= lengths[1]][:count]


def all_methods(predict, deeplift, xi, background) -> dict[str, np.ndarray]:
    """Every method of chapter 7's comparison on one peptide `xi [L, A]`: per-residue scores
    `[m]`, in the order of `METHODS` (the chapter's settings: 128 IG steps, SmoothGrad
    sigma 0.02 with PRNGKey(0), exact Shapley values of both games)."""
    xi = jnp.asarray(xi)
    m = attribution.num_residues(np.asarray(xi))
    own = lambda a: attribution.per_residue(a, xi)  # noqa: E731
    pad = attribution.make_baseline("padding", xi)
    return {
        "gradient × input": own(attribution.gradient_x_input(predict, xi)),
        "IG (zero)": own(attribution.integrated_gradients(predict, xi, steps=128).attributions),
        "IG (padding)": attribution.per_residue(
            attribution.integrated_gradients(predict, xi, pad, steps=128).attributions, xi, how="sum"),
        "SmoothGrad (g × x)": own(attribution.smoothgrad(predict, xi, jax.random.PRNGKey(0), sigma=0.02,
                                                         method="gradient_x_input")),
        "DeepLIFT (zero)": own(deeplift(xi).attributions),
        "occlusion (mask in place)": perturbation.occlusion(predict, xi, length=m + 2),
        "occlusion (background)": perturbation.occlusion(predict, xi, fill=background, length=m + 2),
        "Shapley (mask-in-place game)": shapley.shapley_exact(predict, xi, baseline="padding", length=m + 2).values,
        "Shapley (interventional)": shapley.shapley_exact(predict, xi, background=background, length=m + 2).values,
    }


def study(*, seeds=SEEDS, small: bool = False, command: str = COMMAND) -> dict[str, np.ndarray]:
    """Both studies with the shipped model and the chapter's background. `small`: the grid
    for `seeds` only (pass one) and the agreement methods on the shortest of the 8 peptides
    only (the first of them if several are as short): the same code on a part."""
    from helpers import data
    from helpers import model as cnn
    from helpers import sequences as seqs

    params, _ = cnn.load_pretrained()
    predict = cnn.predict_fn(params)
    train, test = data.load_split("train"), data.load_split("test")
    background = chapter_background(train.x)
    out = {f"conv_{k}": v for k, v in convergence_runs(predict, jnp.asarray(seqs.encode(PEPTIDE)), background,
                                                       seeds=tuple(seeds)).items()}
    short = agreement_peptides(np.asarray(predict(jnp.asarray(test.x))), test.sequences)
    chosen = [min(short, key=lambda i: len(test.sequences[i]))] if small else short
    deeplift = attribution.make_deeplift(lambda act: cnn.predict_fn(params, activation=act))
    longest = max(len(test.sequences[i]) for i in chosen)
    scores = np.full((len(chosen), len(METHODS), longest), np.nan)
    for p, i in enumerate(chosen):
        res = all_methods(predict, deeplift, test.x[i], background)
        assert tuple(res) == METHODS
        for k, name in enumerate(METHODS):
            scores[p, k, : len(test.sequences[i])] = np.asarray(res[name])
    out.update({
        "agree_index": np.array(chosen), "agree_sequence": np.array([test.sequences[i] for i in chosen]),
        "agree_methods": np.array(METHODS), "agree_scores": scores,
        "config_command": np.array(command), "config_seeds": np.array(tuple(seeds)),
        "config_peptide": np.array(PEPTIDE), "config_background": np.array([BACKGROUND_SIZE, BACKGROUND_SEED]),
        "config_perm_budgets": np.array(PERM_BUDGETS), "config_kernel_budgets": np.array(KERNEL_BUDGETS),
        "config_small": np.array(small), "config_jax": np.array(jax.__version__),
    })
    return out


def load_study(path=None) -> dict[str, np.ndarray]:
    """Every array of the shipped study (or of the file at `path`)."""
    from helpers import model as cnn

    path = path or cnn.pretrained_dir() / FILE
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def agreement_scores(d: dict[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    """`{test index: {method: scores [m]}}` from a study `d` (the padding NaNs cut off)."""
    out = {}
    for p, i in enumerate(d["agree_index"]):
        m = len(str(d["agree_sequence"][p]))
        out[int(i)] = {str(name): d["agree_scores"][p, k, :m] for k, name in enumerate(d["agree_methods"])}
    return out


def main(argv=None) -> None:
    import argparse
    import sys
    import time

    from helpers import model as cnn

    p = argparse.ArgumentParser(prog="python -m helpers.shapley_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help=f"compute both studies and write {FILE}")
    p.add_argument("--small", action="store_true", help="seed 0 and the shortest peptide only (tests)")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    a = p.parse_args(argv)
    if not (a.write or a.small):
        p.error("give --write (the shipped study) or --small")
    t0 = time.perf_counter()
    command = "python -m helpers.shapley_study" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    out = study(seeds=(0,) if a.small else SEEDS, small=a.small, command=command)
    out_path = a.out or str(cnn.pretrained_dir() / FILE)
    np.savez_compressed(out_path, **out)
    print(f"{FILE}: done in {time.perf_counter() - t0:.0f} s -> {out_path}")


if __name__ == "__main__":
    main()
