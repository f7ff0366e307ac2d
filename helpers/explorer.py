"""The Explorer page's data: every test peptide explained by every method of the course.

Shape glossary: P test peptides (561), n residues of one peptide, K methods, Q amino acids (20).

For each test peptide and the shipped CNN (`helpers.model.load_pretrained()`), with the
settings of the chapters (`helpers.evaluation.explainers`) unless said otherwise here:

- the logit, the predicted class and the label;
- per-residue attributions of each method in `METHODS`. Methods that return an array
  `[L, A]` are reduced to residues by summing over the 21 channels
  (`attribution.per_residue(how="sum")`, which keeps completeness for the padding and the
  uniform baselines); saliency is the L2 norm of the gradient over the channels and
  SmoothGrad the mean gradient on the residue's own channel, as in `evaluation.explainers`.
  Perturbation methods mask residues in place (padding fill). Shapley values are exact
  (all 2^n coalitions, `shapley.shapley_exact`) when n <= `shapley.MAX_EXACT_PLAYERS`, else
  estimated by antithetic permutation sampling (`PERMUTATIONS` orders, fixed seed); which
  one is recorded per peptide;
- each method's deletion curve (`evaluation.faithfulness_curve`, padding fill: the logit as
  the residues are masked from the highest score down) and its normalised area
  (`evaluation.normalised_area`, None where the full and empty peptide tie);
- the single substitutions that flip the predicted class (`counterfactual.flipping_substitutions`
  of a `substitution_scan`, batched as `Explainer.scan`).

Aggregates over the test set: the mean Spearman rank correlation between every pair of
methods (per peptide, over its residues; peptides of at least 3 residues where both
rankings vary) with its standard error, and the mean attribution per amino acid per method.

    python -m helpers.explorer --write --workers 2   # writes helpers/pretrained/explorer.json.gz
    python -m helpers.explorer --limit 5 --out /tmp/x.json.gz   # the first 5 peptides

Deterministic: method m of peptide i uses the key `fold_in(fold_in(PRNGKey(SEED), i), m)`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from helpers import attribution, counterfactual, evaluation, shapley
from helpers import data as data_lib
from helpers import model as model_lib
from helpers import sequences as seqs_lib

FILE = "explorer.json.gz"
SEED = 0
DIGITS = 5  # significant digits stored
# A recomputation agrees with the stored numbers to these (tests/test_explorer.py): the
# rounding to DIGITS significant digits (relative 5e-6) plus float32 noise of the logits.
RTOL, ATOL = 1e-4, 1e-5
LENGTHS = (32, 64, 128)  # game lengths: the shortest >= n + 2 (one compiled shape each)
IG_STEPS = 64
SMOOTH_SAMPLES, SMOOTH_SIGMA = 50, 0.15
PERMUTATIONS = 64
LIME_SAMPLES = 1000
# A deletion area ranks the methods only where the peptide's logit lies above the all-padding
# input's by more than this (chapter 13's rule): below it, "highest score first" deletes the
# evidence against the prediction first, and near it the normalisation divides by ~0.
AREA_MARGIN = 0.5
# key, label; the order of the arrays in the file
METHODS = (
    ("saliency", "saliency"),
    ("gxi", "gradient × input"),
    ("ig_padding", "IG (padding baseline)"),
    ("ig_uniform", "IG (uniform baseline)"),
    ("smoothgrad", "SmoothGrad"),
    ("deeplift", "DeepLIFT"),
    ("occlusion", "occlusion"),
    ("shapley", "Shapley"),
    ("lime", "LIME"),
)
SETTINGS = {
    "model": model_lib.PRETRAINED_NAME,
    "seed": SEED,
    "keys": "method m of test peptide i: jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), i), m)",
    "ig_steps": IG_STEPS,
    "ig_rule": "trapezoid",
    "smoothgrad": {"samples": SMOOTH_SAMPLES, "sigma": SMOOTH_SIGMA, "reduction": "own channel"},
    "saliency_reduction": "L2 norm over the 21 channels",
    "reduction": "sum over the 21 channels (gradient x input, IG, DeepLIFT)",
    "deeplift": "rescale rule, zero baseline (attribution.make_deeplift)",
    "occlusion": {"window": 1, "fill": "padding"},
    "shapley": {"game": "baseline game, padding fill", "exact_up_to": shapley.MAX_EXACT_PLAYERS,
                "permutations": PERMUTATIONS, "sampler": "antithetic permutation sampling"},
    "lime": {"samples": LIME_SAMPLES, "kernel_width": 0.25, "alpha": 1.0, "fill": "padding"},
    "deletion": {"fill": "padding", "order": "highest score first", "area": "evaluation.normalised_area"},
    "game_lengths": list(LENGTHS),
    "digits": DIGITS,
}


def game_length(n: int) -> int:
    """The shortest of `LENGTHS` that holds n residues and the CNN's reach (n + 2)."""
    for length in LENGTHS:
        if n + 2 <= length:
            return length
    return seqs_lib.DEFAULT_LENGTH


def _round(v) -> list:
    a = np.asarray(v, dtype=float)
    return [float(f"{x:.{DIGITS}g}") for x in a.ravel()]


class Explainer:
    """All methods of `METHODS` for the predict function `f` of the course CNN with `params`."""

    def __init__(self, params, *, seed: int = SEED):
        if not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
        self.f = model_lib.predict_fn(params)
        self.make_f = lambda act: model_lib.predict_fn(params, activation=act)
        self.key = jax.random.PRNGKey(int(seed))
        self.deeplift = attribution.make_deeplift(self.make_f)
        self._methods = {}

    def methods(self, length: int) -> dict:
        if length not in self._methods:
            self._methods[length] = evaluation.explainers(
                self.f, ig_steps=IG_STEPS, smooth_samples=SMOOTH_SAMPLES, smooth_sigma=SMOOTH_SIGMA,
                permutations=PERMUTATIONS, lime_samples=LIME_SAMPLES, length=length)
        return self._methods[length]

    def attributions(self, x, index: int) -> tuple[dict[str, np.ndarray], str]:
        """Per-residue scores `{key: [n]}` of peptide `x [L, A]` (test index `index`, which
        seeds the sampling methods) and how its Shapley values were computed."""
        x = jnp.asarray(x)
        n = attribution.num_residues(x)
        length = game_length(n)
        ms = self.methods(length)
        base = jax.random.fold_in(self.key, int(index))
        keys = {k: jax.random.fold_in(base, m) for m, (k, _) in enumerate(METHODS)}

        def summed(a):
            return attribution.per_residue(a, x, how="sum")

        out = {
            "saliency": ms["saliency"].explain(x, keys["saliency"]),
            "gxi": summed(attribution.gradient_x_input(self.f, x)),
            "ig_padding": summed(attribution.integrated_gradients(self.f, x, "padding", steps=IG_STEPS).attributions),
            "ig_uniform": summed(attribution.integrated_gradients(self.f, x, "uniform", steps=IG_STEPS).attributions),
            "smoothgrad": ms["SmoothGrad"].explain(x, keys["smoothgrad"]),
            "deeplift": summed(self.deeplift(x).attributions),
            "occlusion": ms["occlusion"].explain(x, keys["occlusion"]),
            "lime": ms["LIME"].explain(x, keys["lime"]),
        }
        if n <= shapley.MAX_EXACT_PLAYERS:
            out["shapley"], how = shapley.shapley_exact(self.f, x, baseline="padding", length=length).values, "exact"
        else:
            out["shapley"] = shapley.shapley_permutation(self.f, x, keys["shapley"], n_permutations=PERMUTATIONS,
                                                         baseline="padding", length=length).values
            how = "permutation"
        return {k: np.asarray(out[k], dtype=float) for k, _ in METHODS}, how

    def deletion(self, x, scores: np.ndarray) -> tuple[np.ndarray, float | None]:
        """The deletion curve `[n + 1]` (logits) of `scores`' ranking and its normalised area."""
        n = len(scores)
        curve = evaluation.faithfulness_curve(self.f, x, evaluation.ranking(scores), kind="deletion",
                                              length=game_length(n))
        try:
            area = evaluation.normalised_area(curve, "deletion")
        except ValueError:  # full and empty peptide give the same logit
            area = None
        return curve, area

    def scan(self, sequence: str) -> counterfactual.SubstitutionScan:
        """`counterfactual.substitution_scan` of `sequence`, its variants evaluated by
        `counterfactual.predict_sequences` in batches padded to a power of two: the model is
        compiled for a few batch sizes, not one per peptide length (tests check the two agree)."""
        n = len(sequence)
        variants = [sequence[:i] + a + sequence[i + 1:] for i in range(n) for a in seqs_lib.AMINO_ACIDS]
        logits = counterfactual.predict_sequences(self.f, [sequence, *variants])
        return counterfactual.SubstitutionScan(sequence, float(logits[0]), logits[1:].reshape(n, 20))

    def flips(self, sequence: str) -> list[list]:
        """`[[position (1-based), old, new, logit], ...]`: substitutions that flip the class."""
        scan = self.scan(sequence)
        return [[e.position, e.old, e.new, float(f"{c.logit:.{DIGITS}g}")]
                for c in counterfactual.flipping_substitutions(scan) for e in c.edits]

    def peptide(self, x, sequence: str, label: int, index: int) -> dict:
        """The record of one test peptide (as stored in the file)."""
        scores, how = self.attributions(x, index)
        logit = float(np.asarray(self.f(jnp.asarray(x)[None]))[0])
        rec = {"i": int(index), "sequence": sequence, "label": int(label), "logit": float(f"{logit:.{DIGITS}g}"),
               "prediction": int(logit > 0), "shapley": how, "attributions": {}, "deletion": {}, "area": {}}
        for k, _ in METHODS:
            curve, area = self.deletion(x, scores[k])
            rec["attributions"][k] = _round(scores[k])
            rec["deletion"][k] = _round(curve)
            rec["area"][k] = None if area is None else float(f"{area:.{DIGITS}g}")
        rec["flips"] = self.flips(sequence)
        return rec


def agreement(peptides: Sequence[dict]) -> dict:
    """Mean Spearman correlation `[K, K]` between the methods' per-residue rankings over the
    peptides (each of >= 3 residues whose two rankings are not constant), its standard error
    and the number of peptides behind each entry."""
    keys = [k for k, _ in METHODS]
    rho = np.full((len(peptides), len(keys), len(keys)), np.nan)
    for p, rec in enumerate(peptides):
        a = np.array([rec["attributions"][k] for k in keys])  # [K, n]
        if a.shape[1] < 3:
            continue
        varies = a.std(axis=1) > 0
        r = stats.spearmanr(a, axis=1).statistic if varies.all() else None
        for i in range(len(keys)):
            for j in range(len(keys)):
                if varies[i] and varies[j]:
                    rho[p, i, j] = r[i, j] if r is not None else stats.spearmanr(a[i], a[j]).statistic
    count = np.isfinite(rho).sum(axis=0)
    mean = np.nanmean(rho, axis=0)
    se = np.nanstd(rho, axis=0, ddof=1) / np.sqrt(count)
    return {"methods": keys, "mean": [_round(r) for r in mean], "se": [_round(r) for r in se],
            "count": count.tolist()}


def by_amino_acid(peptides: Sequence[dict]) -> dict:
    """Mean attribution `[K, Q]` of each method over all residues of each amino acid, its
    standard error and the residue counts `[Q]`."""
    keys = [k for k, _ in METHODS]
    seq = "".join(rec["sequence"] for rec in peptides)
    aa = np.array([seqs_lib.AMINO_ACIDS.index(c) for c in seq])
    count = np.bincount(aa, minlength=20)
    mean, se = [], []
    for k in keys:
        v = np.concatenate([rec["attributions"][k] for rec in peptides])
        m = np.array([v[aa == q].mean() if count[q] else np.nan for q in range(20)])
        s = np.array([v[aa == q].std(ddof=1) / np.sqrt(count[q]) if count[q] > 1 else np.nan for q in range(20)])
        mean.append(_round(m))
        se.append(_round(s))
    return {"methods": keys, "amino_acids": seqs_lib.AMINO_ACIDS, "mean": mean, "se": se, "count": count.tolist()}


def _peptides(indices: Sequence[int], seed: int, progress: bool) -> list[dict]:
    params, _ = model_lib.load_pretrained()
    test = data_lib.load_split("test")
    ex = Explainer(params, seed=seed)
    t0, out = time.perf_counter(), []
    for j, i in enumerate(indices):
        out.append(ex.peptide(test.x[i], test.sequences[i], test.y[i], i))
        if progress and (j + 1) % 25 == 0:
            print(f"{j + 1} of {len(indices)} peptides, {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _split_by_length(indices: Sequence[int], lengths: Sequence[int], workers: int) -> list[list[int]]:
    """`indices` in `workers` groups that share no peptide length (each length compiles its
    own shapes once), balanced by the total number of residues."""
    groups, load = [[] for _ in range(workers)], [0] * workers
    for n in sorted(set(lengths[i] for i in indices), reverse=True):
        members = [i for i in indices if lengths[i] == n]
        w = load.index(min(load))
        groups[w] += members
        load[w] += n * len(members)
    return [sorted(g) for g in groups if g]


def build(*, limit: int | None = None, seed: int = SEED, indices: Sequence[int] | None = None,
          progress: bool = False, workers: int = 1) -> dict:
    """The explorer's content for the test split (its first `limit` peptides, or `indices`).
    `workers > 1` computes in that many processes; the result does not depend on it (every
    peptide has its own keys)."""
    test = data_lib.load_split("test")
    if indices is None:
        indices = range(len(test.sequences) if limit is None else min(int(limit), len(test.sequences)))
    indices = [int(i) for i in indices]
    t0 = time.perf_counter()
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        lengths = [len(s) for s in test.sequences]
        groups = _split_by_length(indices, lengths, workers)
        with concurrent.futures.ProcessPoolExecutor(len(groups), mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_peptides, groups, [seed] * len(groups), [progress] * len(groups)))
        by_index = {rec["i"]: rec for part in parts for rec in part}
        peptides = [by_index[i] for i in indices]
    else:
        peptides = _peptides(indices, seed, progress)
    return {"settings": dict(SETTINGS, seed=int(seed)),
            "methods": [{"key": k, "label": name} for k, name in METHODS],
            "peptides": peptides, "agreement": agreement(peptides), "by_amino_acid": by_amino_acid(peptides),
            "seconds": round(time.perf_counter() - t0, 1), "workers": int(workers)}


def save(content: dict, path: Path, command: str) -> None:
    content = dict(content, command=command)
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime=0: same content, same bytes
        f.write(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode())


def load(path: Path | None = None) -> dict:
    """The shipped file (default `helpers/pretrained/explorer.json.gz`)."""
    path = Path(path) if path is not None else model_lib.pretrained_dir() / FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m helpers.explorer --write`")
    with gzip.open(path, "rb") as f:
        return json.loads(f.read().decode())


# ----------------------------------------------------------------------------- the page


def tables(content: dict) -> dict[str, list[dict]]:
    """The file's content as the named datasets of the page's Vega-Lite spec: `peptides` (one
    row each, deletion areas as `area_<key>`, `comparable` where the logit exceeds the all-padding
    input's by more than AREA_MARGIN), `residues` and `curves` (one row per peptide
    with parallel arrays, which the spec flattens for the chosen peptide: a long table would
    repeat the peptide's index for every number), `flips` (one row per substitution) and
    `methods` (key, label, order)."""
    if not isinstance(content, dict) or "peptides" not in content:
        raise TypeError("content must be the dict that explorer.load() returns")
    keys = [m["key"] for m in content["methods"]]
    empty = content["peptides"][0]["deletion"][keys[0]][-1]  # the all-padding input's logit
    peptides, residues, curves, flips = [], [], [], []
    for rec in content["peptides"]:
        i, seq, n = rec["i"], rec["sequence"], len(rec["sequence"])
        peptides.append({"i": i, "sequence": seq, "n": n, "label": rec["label"], "prediction": rec["prediction"],
                         "label_name": data_lib.LABEL_NAMES[rec["label"]],
                         "prediction_name": data_lib.LABEL_NAMES[rec["prediction"]],
                         "logit": round(rec["logit"], 3), "shapley": rec["shapley"], "flips": len(rec["flips"]),
                         "comparable": bool(rec["logit"] - empty > AREA_MARGIN),
                         **{f"area_{k}": None if rec["area"][k] is None else round(rec["area"][k], 3) for k in keys}})
        residues.append({"i": i, "pos": list(range(1, n + 1)), "aa": list(seq),
                         **{k: [float(f"{v:.3g}") for v in rec["attributions"][k]] for k in keys}})
        curves.append({"i": i, "deleted": [round(j / n, 4) for j in range(n + 1)],
                       **{k: [round(v, 3) for v in rec["deletion"][k]] for k in keys}})
        flips.extend({"i": i, "pos": pos, "old": old, "new": new, "logit": round(logit, 3)}
                     for pos, old, new, logit in rec["flips"])
    methods = [{"key": m["key"], "label": m["label"], "order": j} for j, m in enumerate(content["methods"])]
    return {"peptides": peptides, "residues": residues, "curves": curves, "flips": flips, "methods": methods}


_EMBED = """<div class="idl-vega" id="__ID__">__CONTROLS__<div id="__ID__-chart" style="overflow-x: auto"></div></div>
<script>
(function () {
  const spec = __SPEC__;
  const root = document.getElementById("__ID__");
  if (typeof vegaEmbed === "undefined") {
    root.insertAdjacentHTML("beforeend", "<p><em>This interactive chart is drawn by vega-embed, which the " +
      "built book serves; open the book's HTML page to use it.</em></p>");
    return;
  }
  const $ = (name) => document.getElementById("__ID__-" + name);
  const rows = (spec.datasets && spec.datasets.peptides) || [];
  const byId = new Map(rows.map((r) => [r.i, r]));
  const start = (spec.params || []).find((p) => p.name === "peptide");
  let current = start ? start.value : null;
  let view = null;
  function describe(r) {
    return r.sequence + " \u00b7 " + r.n + " residues \u00b7 label " + r.label_name + " \u00b7 logit " +
      r.logit + " (predicted " + r.prediction_name + ") \u00b7 Shapley " + r.shapley + " \u00b7 " +
      r.flips + " flipping substitution" + (r.flips === 1 ? "" : "s");
  }
  function choose(i) {
    if (!byId.has(i)) return;
    current = i;
    if ($("peptide")) $("peptide").value = String(i);
    if ($("summary")) $("summary").textContent = describe(byId.get(i));
    if (view) view.signal("peptide", i).runAsync();
  }
  function matches() {
    const q = $("search").value.trim().toUpperCase(), l = $("label").value, p = $("prediction").value;
    return [q, l, p, rows.filter((r) => r.sequence.includes(q) && (l === "all" || r.label === +l) &&
                                       (p === "all" || r.prediction === +p))];
  }
  function refresh() {
    const [q, l, p, found] = matches();
    $("peptide").replaceChildren(...found.map((r) => new Option(r.sequence + " (" + r.label_name + ", logit " + r.logit + ")", r.i)));
    $("count").textContent = found.length + " of " + rows.length + " peptides match";
    if (view) view.signal("search", q).signal("label_filter", l).signal("prediction_filter", p).runAsync();
    if (found.length && !found.some((r) => r.i === current)) choose(found[0].i); else choose(current);
  }
  vegaEmbed("#__ID__-chart", spec, {renderer: "svg", actions: false}).then((result) => {
    view = result.view;
    root.explorer = {view: view, choose: choose, current: () => current};
    if ($("search")) {
      for (const name of ["search", "label", "prediction"]) for (const kind of ["input", "change"]) $(name).addEventListener(kind, refresh);
      $("peptide").addEventListener("change", () => choose(+$("peptide").value));
      view.addEventListener("click", (event, item) => {
        if (item && item.datum && item.datum.sequence !== undefined && byId.has(item.datum.i)) choose(item.datum.i);
      });
      refresh();
    }
    root.dataset.ready = "true";
  }).catch((error) => {
    console.error(error);
    root.insertAdjacentHTML("beforeend", "<p>The chart could not be drawn: " + error + "</p>");
  });
})();
</script>"""

_CONTROLS = """<form id="__ID__-form" onsubmit="return false" style="display: flex; flex-wrap: wrap; gap: 0.5em 1.5em">
<label>Search sequence <input type="search" id="__ID__-search" placeholder="e.g. GLFD" autocomplete="off"></label>
<label>Label <select id="__ID__-label"><option value="all">all</option><option value="1">hemolytic</option>
<option value="0">non-hemolytic</option></select></label>
<label>Prediction <select id="__ID__-prediction"><option value="all">all</option><option value="1">hemolytic</option>
<option value="0">non-hemolytic</option></select></label>
<label>Peptide <select id="__ID__-peptide" style="max-width: 32em"></select></label>
<span id="__ID__-count"></span></form>
<p id="__ID__-summary" style="font-family: monospace"></p>"""


def embed_html(spec: dict, *, element_id: str, controls: bool = False) -> str:
    """HTML that draws the Vega-Lite `spec` (a dict, datasets inline) with `vegaEmbed` (SVG).
    `controls=True` adds the explorer's search box, label and prediction filters and peptide
    menu; they drive the spec's parameters `peptide`, `search`, `label_filter` and
    `prediction_filter`, and a click on a mark with a peptide's `sequence` picks it."""
    if not isinstance(spec, dict):
        raise TypeError(f"spec must be a Vega-Lite spec as a dict, got {type(spec).__name__}")
    if not isinstance(element_id, str) or not element_id.replace("-", "").isalnum():
        raise ValueError(f"element_id must be letters, digits and dashes, got {element_id!r}")
    text = json.dumps(spec, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    html = _EMBED.replace("__CONTROLS__", _CONTROLS if controls else "")
    return html.replace("__ID__", element_id).replace("__SPEC__", text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Attributions of every test peptide for the Explorer page.")
    p.add_argument("--write", action="store_true", help=f"all test peptides, to helpers/pretrained/{FILE}")
    p.add_argument("--limit", type=int, default=None, help="only the first LIMIT test peptides")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--workers", type=int, default=1, help="processes (the result does not depend on it)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if not args.write and args.out is None:
        p.error("give --write (the shipped file) or --out PATH")
    out = args.out or model_lib.pretrained_dir() / FILE
    content = build(limit=args.limit, seed=args.seed, progress=True, workers=args.workers)
    command = "python -m helpers.explorer " + " ".join(argv if argv is not None else sys.argv[1:])
    save(content, out, command.strip())
    print(f"{out}: {len(content['peptides'])} peptides in {content['seconds']:.0f} s, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
