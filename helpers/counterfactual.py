"""Counterfactual peptides: the fewest edits that change the model's predicted class.

Shape glossary: B batch, L padded length, A = 21 channels, n residues of the peptide.

The model is any predict function `f(x[B, L, A]) -> logits[B]`; class 1 ("hemolytic") is a
logit above 0. An edit is a substitution, a deletion or an insertion of one residue, and the
cost of a counterfactual is its Levenshtein (edit) distance to the original peptide, which
`edit_script` recomputes and spells out from the two sequences alone.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from helpers import sequences as seqs_lib
from helpers import validation

PredictFn = Callable[[jax.Array], jax.Array]
OPERATIONS = ("sub", "del", "ins")
CLASS_NAMES = ("not hemolytic", "hemolytic")
MAX_CANDIDATES = 2_000_000  # search: the most peptides one level may hold (about 1 GB of strings and sets)


class Edit(NamedTuple):
    kind: str  # "sub", "del" or "ins"
    position: int  # 1-based residue of the original peptide; for "ins", inserted after it (0 = at the start)
    old: str  # the original residue ("" for an insertion)
    new: str  # the new residue ("" for a deletion)


class Counterfactual(NamedTuple):
    sequence: str
    logit: float
    edits: tuple[Edit, ...]  # a shortest edit script from the original

    @property
    def distance(self) -> int:
        return len(self.edits)


class SearchResult(NamedTuple):
    original: str
    original_logit: float
    target: int  # the class the counterfactuals reach
    counterfactuals: list[Counterfactual]  # diverse, fewest edits first; may be empty
    min_edits: int | None  # fewest edits found (None: none within max_edits)
    evaluated: int  # peptides run through the model
    message: str  # what was found, or why nothing was
    # Whether the answer is guaranteed: min_edits is the true minimum (or, with min_edits None,
    # no peptide within max_edits reaches the target) because every level before the answer
    # held *every* peptide that many edits away. Level 1 always does (the beam starts with the
    # original alone), so a minimum of 1 or 2 edits is always exact; level d > 1 does only when
    # the beam kept all of level d - 1 (beam_width None, or >= that level's size).
    exact: bool = False
    complete_levels: int = 0  # the levels 1 .. complete_levels held every peptide that far away


# ----------------------------------------------------------------------------- evaluation


def predict_sequences(f: PredictFn, sequences: Iterable[str], *, length: int = seqs_lib.DEFAULT_LENGTH,
                      batch_size: int = 4096) -> np.ndarray:
    """Logits `[B]` of peptide strings, in chunks of at most `batch_size` padded to a power
    of two (so a search compiles the model for a few shapes only)."""
    validation.check_callable(f, "f")
    seqs_lib._check_length(length)
    validation.check_int(batch_size, "batch_size", minimum=1)
    sequences = [seqs_lib._clean(s, length=length, where=f"sequence #{i}: ")
                 for i, s in enumerate(validation.check_peptides(sequences))]
    return _predict_clean(f, sequences, length, batch_size)


def _predict_clean(f: PredictFn, sequences: list[str], length: int, batch_size: int) -> np.ndarray:
    """`predict_sequences` for sequences `_clean` has validated (the search's inner loop)."""
    out = []
    for i in range(0, len(sequences), batch_size):
        chunk = sequences[i : i + batch_size]
        size = 1 << max(len(chunk) - 1, 0).bit_length()
        x = seqs_lib._one_hot(chunk + [chunk[0]] * (size - len(chunk)), length)
        out.append(validation.model_outputs(f, jnp.asarray(x)).astype(np.float32)[: len(chunk)])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _target(logit: float, target: int | None, sequence: str) -> int:
    current = int(logit > 0)
    if target is None:
        return 1 - current
    if target not in (0, 1):
        raise ValueError(f"target must be 0 ({CLASS_NAMES[0]}) or 1 ({CLASS_NAMES[1]}), got {target!r}")
    if target == current:
        raise ValueError(
            f"{sequence} is already predicted {CLASS_NAMES[current]} (logit {logit:+.2f}): a "
            f"counterfactual must reach the other class; ask for target={1 - current} or leave "
            f"target unset"
        )
    return target


# ----------------------------------------------------------------------------- single edits


class SubstitutionScan(NamedTuple):
    sequence: str
    original_logit: float
    logits: np.ndarray  # [n, 20]: the logit with residue i replaced by amino acid a (AMINO_ACIDS order)


def substitution_scan(f: PredictFn, sequence: str, *, length: int = seqs_lib.DEFAULT_LENGTH) -> SubstitutionScan:
    """Every single substitution of a peptide (n positions x 20 amino acids; the entry of the
    residue already there is the original) in one batched model call: the variants are made
    by `vmap` over (position, amino acid) of a one-hot update."""
    validation.check_callable(f, "f")
    seqs_lib._check_length(length)
    s = seqs_lib._clean(sequence, length=length)
    n = len(s)
    x = jnp.asarray(seqs_lib.encode(s, length=length))
    pos = jnp.repeat(jnp.arange(n), 20)
    aa = jnp.tile(jnp.arange(1, 21), n)
    variants = jax.vmap(lambda p, a: x.at[p].set(jax.nn.one_hot(a, seqs_lib.NUM_CHANNELS)))(pos, aa)
    logits = validation.model_outputs(f, variants).reshape(n, 20)
    original = float(validation.model_outputs(f, x[None])[0])
    return SubstitutionScan(s, original, logits)


def flipping_substitutions(scan: SubstitutionScan) -> list[Counterfactual]:
    """The single substitutions that change the predicted class, closest to the decision
    boundary (smallest |logit|) first."""
    if not isinstance(scan, SubstitutionScan):
        raise TypeError(f"scan must be the SubstitutionScan that substitution_scan returns, got {type(scan).__name__}")
    flips = (scan.logits > 0) != (scan.original_logit > 0)
    out = []
    for i, a in zip(*np.nonzero(flips), strict=True):
        new = seqs_lib.AMINO_ACIDS[a]
        seq = scan.sequence[:i] + new + scan.sequence[i + 1 :]
        out.append(Counterfactual(seq, float(scan.logits[i, a]), (Edit("sub", int(i) + 1, scan.sequence[i], new),)))
    return sorted(out, key=lambda c: abs(c.logit))


# ----------------------------------------------------------------------------- edit distance


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions from a to b."""
    return len(edit_script(a, b))


def _levenshtein(a: str, b: str) -> int:
    """The edit distance alone, one row of the dynamic programme updated in place (fast, no
    trace back; `diag` carries the previous row's entry to the upper left)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diag, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (ca != cb))
    return row[-1]


def nearest_edit_distance(queries: Iterable[str], references: Iterable[str]) -> np.ndarray:
    """For each query peptide, the edit distance to its nearest reference peptide, `[Q]` ints.

    Exact Levenshtein distances, vectorised over the references of one length: one row of
    the dynamic programme per query residue, where the insertion term, a running minimum
    along the row, is `j + cummin(t[k] - k)`. Reference lengths that cannot beat the best
    distance so far (|len(q) - len(r)| is a lower bound) are skipped."""
    queries, references = list(queries), list(references)
    for name, group in (("queries", queries), ("references", references)):
        if any(not isinstance(q, str) or not q for q in group):
            raise TypeError(f"{name} must be non-empty strings")
    if not references:
        raise ValueError("references is empty")
    by_length: dict[int, np.ndarray] = {}
    for r in references:
        by_length.setdefault(len(r), []).append(np.frombuffer(r.encode(), np.uint8))
    by_length = {n: np.stack(v) for n, v in by_length.items()}  # [N_n, n] bytes per length n
    out = np.zeros(len(queries), np.int64)
    for qi, q in enumerate(queries):
        qb = np.frombuffer(q.encode(), np.uint8)
        best = np.inf
        for n in sorted(by_length, key=lambda n: abs(n - len(q))):
            if abs(n - len(q)) >= best:
                break
            refs = by_length[n]
            j = np.arange(n + 1)
            row = np.broadcast_to(j, (len(refs), n + 1)).copy()  # D[0, j] = j
            for i, c in enumerate(qb, 1):
                t = np.empty_like(row)
                t[:, 0] = i
                t[:, 1:] = np.minimum(row[:, 1:] + 1, row[:, :-1] + (refs != c))
                row = j + np.minimum.accumulate(t - j, axis=1)
            best = min(best, int(row[:, -1].min()))
        out[qi] = best
    return out


def edit_script(a: str, b: str) -> tuple[Edit, ...]:
    """A shortest list of edits turning `a` into `b` (dynamic programming, then a trace back),
    with positions in `a` (1-based). Ties prefer substitutions, then deletions."""
    for v, name in ((a, "a"), (b, "b")):
        if not isinstance(v, str):
            raise TypeError(f"{name} must be a peptide string, got {type(v).__name__} {v!r}")
    n, m = len(a), len(b)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j - 1] + (a[i - 1] != b[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1)
    edits, i, j = [], n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i, j] == d[i - 1, j - 1] + (a[i - 1] != b[j - 1]):
            if a[i - 1] != b[j - 1]:
                edits.append(Edit("sub", i, a[i - 1], b[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i, j] == d[i - 1, j] + 1:
            edits.append(Edit("del", i, a[i - 1], ""))
            i -= 1
        else:
            edits.append(Edit("ins", i, "", b[j - 1]))
            j -= 1
    return tuple(reversed(edits))


# ----------------------------------------------------------------------------- search


def neighbours(sequence: str, *, operations: Sequence[str] = OPERATIONS, alphabet: str = seqs_lib.AMINO_ACIDS,
               frozen: Iterable[int] = (), min_length: int = 1, max_length: int = seqs_lib.DEFAULT_LENGTH) -> set[str]:
    """All peptides one edit away. `frozen`: 0-based positions that may not be substituted
    or deleted (insertions may still go next to them). `sequence` is validated (and upper-cased)
    like `sequences.encode`."""
    validation.check_names(operations, "operations", OPERATIONS)
    _check_alphabet(alphabet)
    validation.check_int(min_length, "min_length", minimum=1)
    validation.check_int(max_length, "max_length", minimum=1)
    s = seqs_lib._clean(sequence, length=max(max_length, len(sequence)) if isinstance(sequence, str) else 1)
    return _neighbours(s, operations=operations, alphabet=alphabet, frozen=_check_frozen(frozen, len(s)),
                       min_length=min_length, max_length=max_length)


def _check_alphabet(alphabet) -> None:
    if not isinstance(alphabet, str):
        raise TypeError(f"alphabet must be a string of one-letter codes, got {type(alphabet).__name__}")
    bad = [a for a in alphabet if a not in seqs_lib.AMINO_ACIDS]
    if bad or not alphabet:
        raise ValueError(f"alphabet must be non-empty one-letter codes from {seqs_lib.AMINO_ACIDS}; invalid: {bad}")


def _check_frozen(frozen, n: int) -> set[int]:
    if isinstance(frozen, (int, np.integer, str)):
        raise TypeError(f"frozen must be a collection of 0-based positions, got {frozen!r}: write [{frozen!r}]")
    out = {validation.check_int(p, "frozen position") for p in frozen}
    if any(not 0 <= p < n for p in out):
        raise ValueError(f"frozen positions must be 0-based indices into the {n} residues, got {sorted(out)}")
    return out


def _neighbour_bound(b: str, operations, alphabet: str, min_length: int, max_length: int) -> int:
    """An upper bound on the number of `_neighbours` of `b` (duplicates counted)."""
    n, k = len(b), len(alphabet)
    return (n * k * ("sub" in operations) + n * ("del" in operations and n - 1 >= min_length)
            + (n + 1) * k * ("ins" in operations and n + 1 <= max_length))


def _neighbours(sequence: str, *, operations: Sequence[str], alphabet: str, frozen: set,
                min_length: int, max_length: int) -> set[str]:
    """`neighbours` without the checks (the search's inner loop)."""
    out = set()
    n = len(sequence)
    for i in range(n):
        if i in frozen:
            continue
        if "sub" in operations:
            out.update(sequence[:i] + a + sequence[i + 1 :] for a in alphabet if a != sequence[i])
        if "del" in operations and n - 1 >= min_length:
            out.add(sequence[:i] + sequence[i + 1 :])
    if "ins" in operations and n + 1 <= max_length:
        out.update(sequence[:i] + a + sequence[i:] for i in range(n + 1) for a in alphabet)
    out.discard(sequence)
    return out


def _shifted_frozen(original: str, candidate: str, frozen: set[int]) -> set[int]:
    """Where the original's frozen residues sit in `candidate` (they are never edited)."""
    if not frozen:
        return set()
    out, i, j = set(), 0, 0
    for e in edit_script(original, candidate):
        stop = e.position - 1 if e.kind != "ins" else e.position
        while i < stop:
            if i in frozen:
                out.add(j)
            i, j = i + 1, j + 1
        if e.kind == "sub":
            i, j = i + 1, j + 1
        elif e.kind == "del":
            i += 1
        else:
            j += 1
    while i < len(original):
        if i in frozen:
            out.add(j)
        i, j = i + 1, j + 1
    return out


def search(
    f: PredictFn,
    sequence: str,
    *,
    target: int | None = None,
    max_edits: int = 3,
    beam_width: int | None = 64,
    n_results: int = 5,
    operations: Sequence[str] = OPERATIONS,
    alphabet: str = seqs_lib.AMINO_ACIDS,
    frozen: Iterable[int] = (),
    min_length: int = 1,
    max_length: int | None = None,
    length: int = seqs_lib.DEFAULT_LENGTH,
    batch_size: int = 4096,
    max_candidates: int = MAX_CANDIDATES,
) -> SearchResult:
    """Beam search for peptides of the other predicted class within `max_edits` edits.

    Level d holds the new peptides one edit from level d - 1's beam: d edits from the
    original when the earlier levels were complete, possibly fewer under beam pruning (a
    detour through a kept peptide), so `min_edits` is the true edit distance of the returned
    peptides and only the crossing peptides at the smallest distance are kept. Each level expands every peptide of
    the beam by every allowed single edit, evaluates all new peptides in batched model
    calls, and stops at the first level where some reach `target` (default: the class the
    model does not predict now). Otherwise the `beam_width` peptides closest to the target
    (largest signed logit towards it) go on; `beam_width=None` keeps them all, an exhaustive
    breadth-first search that is exact and feasible for short peptides and 1-2 edits.

    `exact` says whether the answer is guaranteed: it is when every level before the one
    that answered was enumerated in full (`complete_levels`). Level 1 always is, so a
    minimum of 1 or 2 edits is exact whatever `beam_width`; beyond that only when the beam
    kept every peptide of the previous levels.

    From the peptides that reach the target at that level, up to `n_results` are returned,
    most confident first, chosen greedily to be diverse: none shares an edited position
    with one already chosen. An empty list (with `message`) means nothing was found within
    `max_edits` under the constraints; a beam search can miss what exists, the exhaustive
    search cannot. Raises for a peptide already of the target class, constraints that
    allow no edit at all, or a level that would hold more than `max_candidates` distinct
    peptides (checked while it is built, before it is evaluated: narrow the beam). Edits are reported as a shortest script recomputed from the two
    sequences; where a frozen residue has an identical neighbour, that script may name
    either copy (the resulting peptide is the same).
    """
    validation.check_callable(f, "f")
    seqs_lib._check_length(length)
    s = seqs_lib._clean(sequence, length=length)
    max_length = length if max_length is None else max_length
    operations = validation.check_names(operations, "operations", OPERATIONS)
    validation.check_int(max_edits, "max_edits", minimum=1)
    validation.check_int(n_results, "n_results", minimum=1)
    if beam_width is not None:
        validation.check_int(beam_width, "beam_width", minimum=1)
    validation.check_int(min_length, "min_length")
    validation.check_int(max_length, "max_length")
    validation.check_int(batch_size, "batch_size", minimum=1)
    validation.check_int(max_candidates, "max_candidates", minimum=1)
    _check_alphabet(alphabet)
    frozen = _check_frozen(frozen, len(s))
    if not 1 <= min_length <= len(s) <= max_length <= length:
        raise ValueError(
            f"impossible length constraints: need 1 <= min_length ({min_length}) <= len(peptide) "
            f"({len(s)}) <= max_length ({max_length}) <= length ({length})"
        )
    if not _neighbours(s, operations=operations, alphabet=alphabet, frozen=frozen, min_length=min_length, max_length=max_length):
        raise ValueError(
            f"the constraints allow no edit of {s} (operations {tuple(operations)}, "
            f"{len(frozen)} of {len(s)} positions frozen, lengths {min_length}..{max_length}): relax them"
        )
    logit0 = float(_predict_clean(f, [s], length, batch_size)[0])
    tgt = _target(logit0, target, s)
    sign = 1.0 if tgt == 1 else -1.0
    seen, beam, evaluated = {s}, [s], 1
    complete = 0  # levels 1 .. complete enumerated in full
    beam_full = True  # the beam holds every peptide of the previous level
    for depth in range(1, max_edits + 1):
        level: set[str] = set()
        for b in beam:
            fr = _shifted_frozen(s, b, frozen)
            level |= _neighbours(b, operations=operations, alphabet=alphabet, frozen=fr,
                                min_length=min_length, max_length=max_length)
            if len(level) > max_candidates:  # refuse before the level exhausts memory
                bound = sum(_neighbour_bound(c, operations, alphabet, min_length, max_length) for c in beam)
                raise ValueError(
                    f"search level {depth} would hold more than {max_candidates:,} candidate peptides "
                    f"(up to {bound:,}, from {len(beam):,} in the beam; {evaluated:,} evaluated so far): "
                    f"set beam_width (e.g. 64) or lower max_edits, or raise max_candidates knowingly")
        level -= seen
        if not level:
            if beam_full and complete == depth - 1:
                complete = max_edits  # nothing further away exists under the constraints
            break
        if beam_full and complete == depth - 1:
            complete = depth
        cands = sorted(level)
        seen |= level
        logits = _predict_clean(f, cands, length, batch_size)
        evaluated += len(cands)
        score = sign * logits
        hits = np.nonzero(score > 0)[0]
        if hits.size:
            # Under beam pruning a level can hold peptides *fewer* than `depth` edits away
            # (reached by a detour through a kept peptide, their short path discarded). The
            # answer's cost is the true edit distance: keep only the hits at the smallest one.
            if complete < depth - 1:
                dist = np.array([_levenshtein(s, cands[i]) for i in hits])
                hits = hits[dist == dist.min()]
                found = int(dist.min())
            else:
                found = depth  # levels 1 .. depth-1 were complete: every new peptide is depth away
            chosen, used = [], set()
            for i in hits[np.argsort(-score[hits], kind="stable")]:
                script = edit_script(s, cands[i])
                positions = {e.position for e in script}
                if positions & used:
                    continue
                chosen.append(Counterfactual(cands[i], float(logits[i]), script))
                used |= positions
                if len(chosen) == n_results:
                    break
            msg = (f"{hits.size} peptides {found} edit{'s' if found > 1 else ''} away are predicted "
                   f"{CLASS_NAMES[tgt]}; {len(chosen)} diverse ones returned")
            if found < depth:
                msg += f" (found at search level {depth} by a detour)"
            exact = complete >= found - 1
            msg += "; the minimum is exact" if exact else (
                f"; levels above {complete} were beam-limited, so fewer edits may exist (beam_width=None is exact)")
            return SearchResult(s, logit0, tgt, chosen, found, evaluated, msg, exact, complete)
        order = np.argsort(-score, kind="stable")
        beam = [cands[i] for i in (order if beam_width is None else order[:beam_width])]
        beam_full = len(beam) == len(cands)
    exact = complete >= max_edits
    msg = (f"no peptide within {max_edits} edit{'s' if max_edits > 1 else ''} is predicted "
           f"{CLASS_NAMES[tgt]} under these constraints ({evaluated} evaluated"
           + ("" if exact else ", beam search: an exhaustive search (beam_width=None) may still find one")
           + "); allow more edits or operations")
    return SearchResult(s, logit0, tgt, [], None, evaluated, msg, exact, complete)


# ----------------------------------------------------------------------------- words and pictures


def describe(original: str, cf: Counterfactual) -> str:
    """The counterfactual in words: "If residue 5 (R) were A, the peptide would be ..."."""
    parts = []
    for e in cf.edits:
        if e.kind == "sub":
            parts.append(f"residue {e.position} ({e.old}) were {e.new}")
        elif e.kind == "del":
            parts.append(f"residue {e.position} ({e.old}) were deleted")
        elif e.position == 0:
            parts.append(f"{e.new} were inserted before residue 1 ({original[0]})")
        else:
            parts.append(f"{e.new} were inserted after residue {e.position} ({original[e.position - 1]})")
    if not parts:
        raise ValueError("a counterfactual needs at least one edit")
    cond = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    cls = CLASS_NAMES[int(cf.logit > 0)]
    prob = 1 / (1 + np.exp(-cf.logit))
    return f"If {cond}, the model would predict the peptide {cls} (logit {cf.logit:+.2f}, p = {prob:.2f})."


def highlight(original: str, cf: Counterfactual, *, as_html: bool = False) -> str:
    """The counterfactual with its edits marked: text `GLLK[R>A]IK[-K]L[+W]L`, or HTML with
    substitutions, insertions (coloured) and deletions (struck through) for a notebook."""
    by_pos: dict[int, list[Edit]] = {}
    for e in cf.edits:
        by_pos.setdefault(e.position, []).append(e)
    out = []

    def ins(es):
        for e in es:
            if e.kind == "ins":
                out.append(f'<b style="color:#1e8449">{e.new}</b>' if as_html else f"[+{e.new}]")

    ins(by_pos.get(0, []))
    for i, a in enumerate(original, start=1):
        es = by_pos.get(i, [])
        change = next((e for e in es if e.kind != "ins"), None)
        if change is None:
            out.append(html.escape(a) if as_html else a)
        elif change.kind == "sub":
            out.append(f'<b style="color:#c0392b" title="{a}{i}{change.new}">{change.new}</b>' if as_html else f"[{a}>{change.new}]")
        else:
            out.append(f'<s style="color:#7f8c8d">{a}</s>' if as_html else f"[-{a}]")
        ins(es)
    body = "".join(out)
    return f'<code style="font-size:1.05em">{body}</code>' if as_html else body
