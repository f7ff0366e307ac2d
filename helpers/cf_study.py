"""Counterfactual quality over the test set: the study chapter 10 loads.

Shape glossary: P peptides of the study (a seeded sample of the test split).

For every peptide of a seeded sample of the test split, `counterfactual.search` with the
shipped CNN (seed 0) looks for the fewest edits that change the predicted class, within a
budget of `max_edits` and a beam of `beam_width`. Recorded per peptide: whether a
counterfactual was found (validity), its edit count (proximity), whether that minimum is
exact, the most confident counterfactual and its logit, and the edit distance of the
peptide and of its counterfactual to the nearest training peptide (plausibility), with the
same distance for every real test peptide as the yardstick (`nearest_train_test`, in test
order; `--small`: the first `limit` test peptides).

    python -m helpers.cf_study            # writes helpers/pretrained/cf_study.npz
    python -m helpers.cf_study --small    # its first 6 peptides, one edit, to --out (tests)

The study is deterministic: the sample is drawn with `numpy.random.default_rng(seed)` and
the search has no randomness. How retrained models (seeds 1-3, `python -m helpers.training
--seed k --name hemolysis_cnn_seedk`) judge the counterfactuals is cheap and computed in the
chapter.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from helpers import counterfactual as cf
from helpers import data as data_lib
from helpers import model as model_lib
from helpers import sequences as seqs_lib

DEFAULTS = {"n_peptides": 120, "seed": 0, "max_edits": 3, "beam_width": 16, "limit": 0}
SMALL = {**DEFAULTS, "max_edits": 1, "limit": 6}  # the first 6 peptides of the same sample, one edit


def search_length(sequence: str) -> int:
    """Padded length for the search: room for the insertions, rounded up to a multiple of 16
    (few array shapes, few compilations), at most the model's length. The CNN ignores
    trailing padding once the length is at least n + 2."""
    return min(seqs_lib.DEFAULT_LENGTH, -(-(len(sequence) + 8) // 16) * 16)


def sample_indices(n_total: int, *, n_peptides: int, seed: int) -> np.ndarray:
    """The study's peptides: `n_peptides` test indices drawn without replacement, sorted."""
    if not 1 <= n_peptides <= n_total:
        raise ValueError(f"n_peptides must be in 1..{n_total}, got {n_peptides}")
    return np.sort(np.random.default_rng(seed).choice(n_total, n_peptides, replace=False))


def run_study(*, n_peptides: int, seed: int, max_edits: int, beam_width: int, limit: int = 0,
              progress: bool = True) -> dict:
    """Searches a counterfactual for each sampled test peptide (only the first `limit` of the
    sample when `limit` > 0); returns the arrays to save."""
    params, _ = model_lib.load_pretrained()
    f = model_lib.predict_fn(params)
    test, train = data_lib.load_split("test"), data_lib.load_split("train")
    idx = sample_indices(len(test.y), n_peptides=n_peptides, seed=seed)[: limit or None]
    rows = []
    t0 = time.perf_counter()
    for k, i in enumerate(idx):
        s = test.sequences[i]
        r = cf.search(f, s, max_edits=max_edits, beam_width=beam_width, n_results=1, length=search_length(s))
        best = r.counterfactuals[0] if r.counterfactuals else None
        rows.append((s, int(test.y[i]), r.original_logit, r.target, -1 if r.min_edits is None else r.min_edits,
                     r.exact, best.sequence if best else "", best.logit if best else np.nan, r.evaluated))
        if progress and (k + 1) % 20 == 0:
            print(f"{k + 1}/{len(idx)} peptides, {time.perf_counter() - t0:.0f} s", flush=True)
    seq, label, logit, target, min_edits, exact, cf_seq, cf_logit, evaluated = map(list, zip(*rows, strict=True))
    found = np.array(min_edits) > 0
    near_orig = cf.nearest_edit_distance(seq, train.sequences)
    near_cf = np.full(len(seq), -1, np.int64)
    near_cf[found] = cf.nearest_edit_distance([c for c, ok in zip(cf_seq, found) if ok], train.sequences)
    # the yardstick: how far real test peptides of each class lie from the training set
    near_test = cf.nearest_edit_distance(test.sequences if not limit else test.sequences[:limit], train.sequences)
    return {
        "test_index": idx, "sequence": np.array(seq), "label": np.array(label), "logit": np.array(logit),
        "target": np.array(target), "min_edits": np.array(min_edits), "exact": np.array(exact),
        "cf_sequence": np.array(cf_seq), "cf_logit": np.array(cf_logit), "evaluated": np.array(evaluated),
        "nearest_train_original": near_orig, "nearest_train_cf": near_cf,
        "nearest_train_test": near_test, "test_label": test.y[: len(near_test)],
        "seconds": np.array(time.perf_counter() - t0),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Counterfactual quality over a seeded sample of the test split.")
    p.add_argument("--small", action="store_true", help="a few peptides and a small budget (tests)")
    p.add_argument("--out", type=Path, default=model_lib.pretrained_dir() / "cf_study.npz")
    args = p.parse_args(argv)
    config = SMALL if args.small else DEFAULTS
    out = run_study(**config)
    command = "python -m helpers.cf_study " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out, **{f"config_{k}": np.array(v) for k, v in config.items()},
             config_command=np.array(command.strip()))
    print(f"{args.out}: {len(out['sequence'])} peptides, {int((out['min_edits'] > 0).sum())} with a counterfactual, "
          f"{float(out['seconds']):.0f} s")


if __name__ == "__main__":
    main()
