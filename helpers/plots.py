"""Shared figures (seaborn/matplotlib), so every chapter looks the same.

Call `set_style()` once in a chapter; nothing here changes global state on import.
Every function takes an optional `ax` and returns it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from helpers.metrics import confusion, roc_curve
from helpers.sequences import AMINO_ACIDS

POSITIVE_COLOR = "#c0392b"  # red: pushes towards "hemolytic"
NEGATIVE_COLOR = "#2e86c1"  # blue: pushes towards "non-hemolytic"
CLASS_PALETTE = {"non-hemolytic": NEGATIVE_COLOR, "hemolytic": POSITIVE_COLOR}


def set_style() -> None:
    """The course's figure style (call once per chapter)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def _ax(ax, figsize=(7, 3)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def signed_bars(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    ax=None,
    ylabel: str = "score",
    title: str | None = None,
):
    """One bar per label (a residue, an amino acid), red if positive, blue if negative."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) != len(labels):
        raise ValueError(f"{values.shape} values for {len(labels)} labels")
    ax = _ax(ax, figsize=(max(4.0, 0.32 * len(values) + 1), 3))
    colors = np.where(values >= 0, POSITIVE_COLOR, NEGATIVE_COLOR)
    ax.bar(np.arange(len(values)), values, color=colors, width=0.8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(values)), list(labels))
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis="x", visible=False)
    return ax


def residue_bars(scores: Sequence[float], sequence: str, *, ax=None, ylabel="attribution (logit)", title=None):
    """Per-residue scores `[n]` of a peptide of n residues, coloured by sign."""
    return signed_bars(scores, list(sequence), ax=ax, ylabel=ylabel, title=title)


def residue_heatmap(
    values: np.ndarray,
    sequence: str,
    *,
    ax=None,
    cbar_label: str = "value",
    title: str | None = None,
    center: float | None = 0.0,
):
    """A `[n, 21]` or `[n, 20]` array over a peptide's positions: amino acids x positions."""
    values = np.asarray(values, dtype=float)
    n = len(sequence)
    if values.ndim != 2 or values.shape[0] < n or values.shape[1] not in (20, 21):
        raise ValueError(f"expected [>= {n}, 20 or 21] values, got {values.shape}")
    rows = list("-" + AMINO_ACIDS) if values.shape[1] == 21 else list(AMINO_ACIDS)
    ax = _ax(ax, figsize=(max(4.0, 0.3 * n + 2), 5))
    cmap = "RdBu_r" if center is not None else "viridis"
    sns.heatmap(
        values[:n].T, ax=ax, cmap=cmap, center=center, xticklabels=list(sequence),
        yticklabels=rows, cbar_kws={"label": cbar_label},
    )
    ax.set_xlabel("residue (position in the peptide)")
    ax.set_ylabel("channel")
    ax.tick_params(axis="x", rotation=0)
    ax.tick_params(axis="y", rotation=0)
    if title:
        ax.set_title(title)
    return ax


def roc_plot(y: np.ndarray, logits: np.ndarray, *, ax=None, label: str = "model"):
    """ROC curve with the chance diagonal; the legend gives the AUROC."""
    from helpers.metrics import auroc

    ax = _ax(ax, figsize=(4, 4))
    fpr, tpr, _ = roc_curve(y, logits)
    ax.plot(fpr, tpr, lw=2, label=f"{label} (AUROC {auroc(y, logits):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance (AUROC 0.5)")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def confusion_plot(y: np.ndarray, pred: np.ndarray, *, ax=None, labels=("non-hemolytic", "hemolytic")):
    """Confusion matrix as counts (rows: truth, columns: prediction)."""
    ax = _ax(ax, figsize=(4, 3.5))
    sns.heatmap(
        confusion(y, pred), annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
        xticklabels=labels, yticklabels=labels,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return ax


def training_curves(history: list[dict], *, ax=None, best_epoch: int | None = None):
    """Training and validation loss (left axis) and validation AUROC (right axis) per epoch."""
    ax = _ax(ax, figsize=(7, 3))
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["train_loss"] for h in history], label="training loss", color="tab:blue")
    ax.plot(ep, [h["val_loss"] for h in history], label="validation loss", color="tab:orange")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(ep, [h["val_auroc"] for h in history], color="tab:green", ls="--", label="validation AUROC")
    ax2.set_ylabel("validation AUROC")
    ax2.grid(False)
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", lw=0.8, ls=":")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize="small", loc="center right")
    return ax


def shape_plot(
    grid: Sequence[float],
    curves: dict[str, Sequence[float]],
    *,
    data: Sequence[float] | None = None,
    ax=None,
    xlabel: str = "feature value",
    ylabel: str = "contribution",
    title: str | None = None,
    styles: dict[str, dict] | None = None,
):
    """Shape functions of one feature: one line per entry of `curves` (each `[G]` on
    `grid [G]`), over a histogram of the feature's `data` (the density, bottom quarter of
    the axes) and grey shading where the grid leaves the data's range (extrapolation)."""
    grid = np.asarray(grid, dtype=float)
    ax = _ax(ax, figsize=(4, 3))
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.shape != grid.shape:
            raise ValueError(f"curve {label!r} has shape {values.shape}, the grid {grid.shape}")
        ax.plot(grid, values, label=label, **(styles or {}).get(label, {"lw": 1.8}))
    if data is not None:
        data = np.asarray(data, dtype=float)
        dens = ax.twinx()
        dens.hist(data, bins=40, range=(grid.min(), grid.max()), color="grey", alpha=0.25)
        dens.set_ylim(0, dens.get_ylim()[1] * 4)  # the density fills the bottom quarter
        dens.set_yticks([])
        dens.grid(False)
        lo, hi = data.min(), data.max()
        for a, b in ((grid.min(), lo), (hi, grid.max())):
            if b > a:
                ax.axvspan(a, b, color="grey", alpha=0.12, lw=0)
    ax.set_xlim(grid.min(), grid.max())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def decision_boundary(
    prob,  # [G, G]: P(class 1) on a regular grid over [0, 1]^2, rows = x2, columns = x1
    *,
    x=None,  # [N, 2] points to overlay
    y=None,  # [N] their labels in {0, 1}
    boundary=None,  # callable x1 -> x2: a reference boundary to draw (e.g. the truth)
    ax=None,
    title: str | None = None,
):
    """Predicted probability over the unit square (blue = class 0, red = class 1) with the
    model's decision boundary (p = 0.5, black), optional points coloured by label and an
    optional reference boundary (dashed)."""
    prob = np.asarray(prob, dtype=float)
    if prob.ndim != 2 or prob.shape[0] != prob.shape[1]:
        raise ValueError(f"prob must be a square [G, G] grid, got shape {prob.shape}")
    ax = _ax(ax, figsize=(3.2, 3))
    g = np.linspace(0, 1, prob.shape[0])
    cmap = sns.blend_palette([NEGATIVE_COLOR, "white", POSITIVE_COLOR], as_cmap=True)
    ax.contourf(g, g, prob, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.55)
    if prob.min() < 0.5 < prob.max():
        ax.contour(g, g, prob, levels=[0.5], colors="black", linewidths=1.4)
    if boundary is not None:
        ax.plot(g, boundary(g), ls="--", color="0.3", lw=1)
    if x is not None:
        x, y = np.asarray(x), np.asarray(y)
        for label, color in ((0, NEGATIVE_COLOR), (1, POSITIVE_COLOR)):
            ax.scatter(*x[y == label].T, s=6, color=color, edgecolor="none")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def table_heatmap(table, *, ax=None, cbar_label: str = "value", title: str | None = None, center: float | None = 0.0,
                  vmin: float | None = None, vmax: float | None = None, fmt: str = ".2f"):
    """A pandas DataFrame of numbers as an annotated heatmap (rows x columns as labelled)."""
    values = np.asarray(table, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D table, got shape {values.shape}")
    ax = _ax(ax, figsize=(0.8 * values.shape[1] + 3, 0.4 * values.shape[0] + 1.5))
    sns.heatmap(table, ax=ax, cmap="RdBu_r" if center is not None else "viridis", center=center, vmin=vmin, vmax=vmax,
                annot=True, fmt=fmt, annot_kws={"size": 8}, cbar_kws={"label": cbar_label})
    ax.tick_params(axis="y", rotation=0)
    if title:
        ax.set_title(title)
    return ax


def found_curves(checked, curves: dict, *, ax=None, title: str | None = None,
                 xlabel: str = "fraction of training set checked", ylabel: str = "fraction of flipped labels found"):
    """Planted errors found against the share of the data checked: one line per entry of
    `curves` (`[F]` on `checked [F]`, or `[S, F]` over S repeats: the mean, with the min-max
    band), and the diagonal that checking in random order follows on average."""
    checked = np.asarray(checked, dtype=float)
    ax = _ax(ax, figsize=(5, 3.6))
    for label, values in curves.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        if values.shape[-1] != checked.shape[0]:
            raise ValueError(f"curve {label!r} has {values.shape[-1]} points, checked has {checked.shape[0]}")
        line, = ax.plot(checked, values.mean(axis=0), label=label, lw=1.6)
        if len(values) > 1:
            ax.fill_between(checked, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2, lw=0)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def predicted_vs_actual(groups: dict, *, ax=None, title: str | None = None,
                        xlabel: str = "actual change in test loss (retrained)",
                        ylabel: str = "predicted by influence", markers: dict | None = None):
    """Predicted against actual effects: one scatter per entry `label: (actual [R], predicted [R])`
    of `groups` (marker `markers[label]`, default 'o'), and the diagonal y = x on equal limits."""
    if not isinstance(groups, dict) or not groups:
        raise ValueError("groups must be a non-empty dict {label: (actual [R], predicted [R])}")
    if markers is not None and not isinstance(markers, dict):
        raise TypeError(f"markers must be a dict {{label: marker}}, got {type(markers).__name__}")
    ax = _ax(ax, figsize=(4.6, 4.2))
    lim = 0.0
    for label, (actual, predicted) in groups.items():
        actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
        if actual.shape != predicted.shape or actual.ndim != 1:
            raise ValueError(f"group {label!r}: actual and predicted must be [R] of one length, "
                             f"got {actual.shape} and {predicted.shape}")
        if not (np.isfinite(actual).all() and np.isfinite(predicted).all()):
            raise ValueError(f"group {label!r} holds NaN or infinite values: drop them before plotting")
        ax.scatter(actual, predicted, s=16, marker=(markers or {}).get(label, "o"), label=label)
        lim = max(lim, float(np.abs(actual).max(initial=0.0)), float(np.abs(predicted).max(initial=0.0)))
    lim = 1.1 * lim if lim > 0 else 1.0
    ax.plot([-lim, lim], [-lim, lim], color="grey", lw=0.8)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def logo(pwm, *, ax=None, title: str | None = None, kind: str = "information", background=None):
    """A sequence logo of a position weight matrix `pwm [w, 20]` (rows: positions, columns:
    `AMINO_ACIDS`), drawn with logomaker (imported here, so that the rest of the module does
    not need it). `kind="information"`: letter heights in bits, each row's relative entropy
    against `background [20]` (default uniform; pass e.g. the training set's composition, so
    that a letter is tall only where it is enriched beyond that) shared in proportion to the
    frequencies, as `motifs.information`; `"probability"`: the frequencies themselves."""
    import logomaker
    import pandas as pd

    p = np.asarray(pwm, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(AMINO_ACIDS) or not np.isfinite(p).all():
        raise ValueError(f"pwm must be a finite matrix [w, {len(AMINO_ACIDS)}], got shape {p.shape}")
    if kind not in ("information", "probability"):
        raise ValueError(f"kind must be 'information' or 'probability', got {kind!r}")
    if background is not None:
        from helpers import motifs

        background = motifs.check_background(background)  # the same rule as motifs.information
        if kind != "information":
            raise ValueError("background is used only with kind='information'")
    frame = pd.DataFrame(p / p.sum(axis=1, keepdims=True), columns=list(AMINO_ACIDS))
    if kind == "information":
        frame = logomaker.transform_matrix(frame, from_type="probability", to_type="information", background=background)
    ax = _ax(ax, figsize=(0.45 * len(p) + 1, 2))
    logomaker.Logo(frame, ax=ax, color_scheme="chemistry")
    ax.set_xticks(np.arange(len(p)), [str(i + 1) for i in range(len(p))])
    ax.set_xlabel("position")
    ax.set_ylabel("bits" if kind == "information" else "frequency")
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
