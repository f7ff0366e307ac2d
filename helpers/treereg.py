"""Tree regularisation (Wu et al., AAAI 2018): train a network so that a small decision tree
can mimic it.

The cost of simulating a model by hand is measured by the *average path length* (APL) of a
decision tree fitted to the model's own predictions: how many yes/no questions the average
input needs. APL is not differentiable in the weights, so a small *surrogate* network learns
to predict it from the flattened weights, on (weights, APL) pairs gathered during training
and refitted periodically, and the training objective adds `strength * surrogate(weights)`.

`python -m helpers.treereg` runs chapter 12's sweep (every regulariser at several
strengths and seeds) and writes `helpers/pretrained/treereg_sweep.npz`; `--small` is the
smoke-test setting the tests run. `--spread` measures how far single runs move when the
arithmetic changes by rounding steps (`rerun_spread`, `helpers/pretrained/treereg_spread.npz`):
unregularised and tree-regularised training are chaotic, so a rerun on another machine is
compared with a shipped run only within that spread (`rerun_band`). `--extra` retrains a
finer L2 grid and the two settings of chapter 12's key comparison with their test logits
(`extra_runs`; default output `helpers/pretrained/treereg_extra.npz`, not shipped); `--extra --l2-only`
retrains only the L2 grid, 0.005 to 0.01, three seeds (`helpers/pretrained/treereg_extra_l2.npz`, shipped:
chapter 12's low-APL verdict). `--live` trains
chapter 12's tree-regularised run (lambda 3, seed 0; minutes of CPU) and stores its weights and
history (`live_run`, `load_live_run`, `helpers/pretrained/treereg_live.npz`). The same methods on the peptide
descriptors: `helpers.treereg_real`.

The code lives in two modules, re-exported here so that `helpers.treereg.<name>` works
for every public name: `helpers.treereg_model` (the method: data, trees, network,
surrogate, training, evaluation) and `helpers.treereg_study` (the shipped studies and their
files). This module adds the command line.

Shape glossary: B batch, D input dimensions (2 here), P flattened network parameters,
M gathered (weights, APL) pairs, T steps in one training chunk.
"""

from __future__ import annotations

import time

import numpy as np

from helpers.treereg_model import (
    MIN_SAMPLES_LEAF,
    REGULARISERS,
    Evaluation,
    ParabolaData,
    RegularisedRun,
    Surrogate,
    _chunk as _chunk,  # the jitted training chunk, used by chapter 12's by-hand step
    _fit_surrogate as _fit_surrogate,
    _make_mlp as _make_mlp,
    average_path_length,
    evaluate,
    fidelity,
    fit_surrogate,
    init_surrogate,
    jitter_params,
    make_mlp,
    mimic_tree,
    network_apl,
    network_mimic,
    parabola_boundary,
    parabola_data,
    surrogate_apl,
    train_regularised,
    weight_penalty,
)
from helpers.treereg_study import (
    BAND_FLOOR,
    EXTRA_FILE,
    EXTRA_L2_FILE,
    EXTRA_L2_STRENGTHS,
    EXTRA_STRENGTHS,
    LIVE_FILE,
    SPREAD_FILE,
    SPREAD_SETTINGS,
    SWEEP_FILE,
    SWEEP_STRENGTHS,
    TREE_DEPTHS,
    extra_runs,
    grid,
    live_run,
    load_live_run,
    load_sweep,
    rerun_band,
    rerun_spread,
    sweep,
    sweep_run,
)

# every public name of both modules, importable as helpers.treereg.<name>
__all__ = [
    "BAND_FLOOR",
    "EXTRA_FILE",
    "EXTRA_L2_FILE",
    "EXTRA_L2_STRENGTHS",
    "EXTRA_STRENGTHS",
    "Evaluation",
    "LIVE_FILE",
    "MIN_SAMPLES_LEAF",
    "ParabolaData",
    "REGULARISERS",
    "RegularisedRun",
    "SPREAD_FILE",
    "SPREAD_SETTINGS",
    "SWEEP_FILE",
    "SWEEP_STRENGTHS",
    "Surrogate",
    "TREE_DEPTHS",
    "average_path_length",
    "evaluate",
    "extra_runs",
    "fidelity",
    "fit_surrogate",
    "grid",
    "init_surrogate",
    "jitter_params",
    "live_run",
    "load_live_run",
    "load_sweep",
    "make_mlp",
    "mimic_tree",
    "network_apl",
    "network_mimic",
    "parabola_boundary",
    "parabola_data",
    "rerun_band",
    "rerun_spread",
    "surrogate_apl",
    "sweep",
    "sweep_run",
    "train_regularised",
    "weight_penalty",
    "main",
]


def main(argv=None) -> None:
    import argparse

    from helpers.model import pretrained_dir

    p = argparse.ArgumentParser(description="Run the tree-regularisation sweep of chapter 12 (or the rerun spread) and save it.")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    p.add_argument("--spread", action="store_true", help="measure the rerun spread (rerun_spread) instead of the sweep")
    p.add_argument("--reruns", type=int, default=16, help="with --spread: jittered reruns per setting")
    p.add_argument("--steps", type=int, default=1500, help="training steps per run")
    p.add_argument("--seeds", type=int, default=3, help="network initialisations per setting")
    p.add_argument("--small", action="store_true", help="one strength per regulariser, one seed, a small network: a smoke test")
    p.add_argument("--extra", action="store_true", help="the finer L2 grid and the key comparison's test logits (extra_runs)")
    p.add_argument("--l2-only", action="store_true", help="with --extra: only the finer L2 grid, 0.005 to 0.01 (shipped as treereg_extra_l2.npz)")
    p.add_argument("--live", action="store_true", help="chapter 12's tree-regularised run, lambda 3, seed 0 (live_run)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    if a.live:
        out_path = a.out or str(pretrained_dir() / LIVE_FILE)
        out = live_run(steps=a.steps, **(dict(hidden=(16, 16)) if a.small else {}))
        out["config_command"] = np.array("python -m helpers.treereg --live" + (" --small" if a.small else "") + f" --steps {a.steps}")
        np.savez_compressed(out_path, **out)
        print(f"1 run in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    if a.extra:
        out_path = a.out or str(pretrained_dir() / EXTRA_FILE)
        kw = dict(strengths={"l2": (1e-2,)}, seeds=(0,), hidden=(16, 16)) if a.small else dict(seeds=tuple(range(a.seeds)))
        if a.l2_only and not a.small:
            kw["strengths"] = {"l2": EXTRA_L2_STRENGTHS}
            out_path = a.out or str(pretrained_dir() / EXTRA_L2_FILE)
        out = extra_runs(steps=a.steps, **kw)
        out["config_command"] = np.array("python -m helpers.treereg --extra" + (" --l2-only" if a.l2_only else "")
                                         + (" --small" if a.small else "") + f" --steps {a.steps} --seeds {a.seeds}")
        np.savez_compressed(out_path, **out)
        print(f"{len(out['extra_seed'])} runs in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    if a.spread:
        out_path = a.out or str(pretrained_dir() / SPREAD_FILE)
        kw = dict(settings=(("tree", 3.0, 0),), hidden=(16, 16)) if a.small else {}
        out = rerun_spread(reruns=a.reruns, steps=a.steps, **kw)
        np.savez_compressed(out_path, **out)
        print(f"{len(out['spread_seed'])} settings x {a.reruns} reruns in {time.perf_counter() - t0:.0f} s -> {out_path}")
        return
    if a.small:
        kw = dict(strengths={"none": (0.0,), "l1": (1e-3,), "l2": (1e-2,), "tree": (3.0,)}, seeds=(0,),
                  hidden=(16, 16), grid_n=11, depths=(1, 2))
    else:
        kw = dict(seeds=tuple(range(a.seeds)))
    out_path = a.out or str(pretrained_dir() / SWEEP_FILE)
    out = sweep(steps=a.steps, **kw)
    np.savez_compressed(out_path, **out)
    print(f"{len(out['seed'])} runs in {time.perf_counter() - t0:.0f} s -> {out_path}")


if __name__ == "__main__":
    main()
