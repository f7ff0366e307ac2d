"""Training the hemolysis CNN with optax; early stopping on validation AUROC.

Shape glossary: B batch, L length, A = 21 channels, N examples, S steps per epoch.

Run as a script to (re)make the shipped weights:

    python -m helpers.training --out helpers/pretrained

Every choice here (epochs, learning rate, weight decay, class weighting) was made on the
validation split; the test split is scored once, by this script, after training.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from helpers import data as data_lib
from helpers import metrics as metrics_lib
from helpers import model as model_lib

# The settings of the shipped model (chosen on the validation split).
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 3e-3,
    "weight_decay": 1e-3,
    "patience": 8,
}


class TrainState(NamedTuple):
    params: hk.Params
    opt_state: optax.OptState
    step: jax.Array  # [] int32


class Batch(NamedTuple):
    x: jax.Array  # [B, ...]: one-hot [B, L, A] for the CNN, features [B, F] elsewhere
    y: jax.Array  # [B] float32: labels in {0, 1}, or regression targets


class TrainResult(NamedTuple):
    params: hk.Params  # the best parameters by validation AUROC
    best_epoch: int
    history: list[dict]  # one dict per epoch: epoch, train_loss, val_loss, val_auroc
    seconds: float


def bce_loss(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean binary cross-entropy from logits `[B]` and labels `[B]`."""
    return optax.sigmoid_binary_cross_entropy(logits, y).mean()


def mse_loss(outputs: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error of outputs `[B]` against targets `[B]`."""
    return jnp.mean((outputs - y) ** 2)


def make_optimizer(*, learning_rate: float, weight_decay: float, total_steps: int):
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=learning_rate,
        warmup_steps=max(total_steps // 20, 1),
        decay_steps=total_steps,
        end_value=learning_rate * 0.01,
    )
    return optax.adamw(schedule, weight_decay=weight_decay)


def make_update(
    model: hk.Transformed,
    optimizer: optax.GradientTransformation,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array] = bce_loss,
):
    """A pure, jitted `update(state, batch) -> (state, loss)`; `loss(outputs [B], y [B])`
    is a scalar (binary cross-entropy on logits by default, e.g. `mse_loss` to regress)."""

    def loss_fn(params: hk.Params, batch: Batch) -> jax.Array:
        return loss(model.apply(params, batch.x), batch.y)

    @jax.jit
    def update(state: TrainState, batch: Batch) -> tuple[TrainState, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), loss

    return update


def make_epoch(update: Callable) -> Callable:
    """Jitted `epoch(state, x[N, L, A], y[N], perm[S, B]) -> (state, mean loss)`: one pass
    of `update` over the mini-batches given by the rows of `perm`, as one `lax.scan`."""

    @jax.jit
    def epoch(state: TrainState, x: jax.Array, y: jax.Array, perm: jax.Array):
        def body(state, idx):
            return update(state, Batch(x[idx], y[idx]))

        state, losses = jax.lax.scan(body, state, perm)
        return state, losses.mean()

    return epoch


def predict_batched(apply: Callable, params: hk.Params, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Logits `[N]` for `x [N, L, A]`, in batches to bound memory."""
    f = jax.jit(apply)
    return np.concatenate(
        [np.asarray(f(params, jnp.asarray(x[i : i + batch_size]))) for i in range(0, len(x), batch_size)]
    )


def train(
    *,
    train_split: data_lib.Split | None = None,
    val_split: data_lib.Split | None = None,
    seed: int = DEFAULTS["seed"],
    epochs: int = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    weight_decay: float = DEFAULTS["weight_decay"],
    patience: int = DEFAULTS["patience"],
    progress: bool = True,
    model_config: dict | None = None,
) -> TrainResult:
    """Trains `HemolysisCNN` from `seed`; keeps the parameters of the best validation AUROC
    and stops after `patience` epochs without improvement."""
    if epochs < 1 or batch_size < 1 or patience < 1:
        raise ValueError("epochs, batch_size and patience must be positive")
    train_split = train_split or data_lib.load_split("train")
    val_split = val_split or data_lib.load_split("validation")
    n = len(train_split.y)
    if n < batch_size:
        raise ValueError(f"{n} training examples are fewer than one batch of {batch_size}")
    steps = n // batch_size
    model = model_lib.make_model(**(model_config or {}))
    optimizer = make_optimizer(
        learning_rate=learning_rate, weight_decay=weight_decay, total_steps=epochs * steps
    )
    key = jax.random.PRNGKey(seed)
    params = model.init(key, jnp.asarray(train_split.x[:1]))
    state = TrainState(params, optimizer.init(params), jnp.zeros([], jnp.int32))
    epoch_fn = make_epoch(make_update(model, optimizer))
    x, y = jnp.asarray(train_split.x), jnp.asarray(train_split.y, jnp.float32)
    xv, yv = jnp.asarray(val_split.x), val_split.y
    val_logits_fn = jax.jit(model.apply)
    rng = np.random.default_rng(seed)

    t0 = time.perf_counter()
    history: list[dict] = []
    best = (-np.inf, 0, params)
    bar = tqdm(
        range(1, epochs + 1), desc="training", unit="epoch", disable=not progress,
        file=sys.stdout, mininterval=1.0, ncols=100,
    )
    for ep in bar:
        perm = rng.permutation(n)[: steps * batch_size].reshape(steps, batch_size)
        state, loss = epoch_fn(state, x, y, jnp.asarray(perm))
        logits = np.asarray(val_logits_fn(state.params, xv))
        val_loss = float(bce_loss(jnp.asarray(logits), jnp.asarray(yv, jnp.float32)))
        val_auroc = metrics_lib.auroc(yv, logits)
        history.append(
            {"epoch": ep, "train_loss": float(loss), "val_loss": val_loss, "val_auroc": val_auroc}
        )
        if val_auroc > best[0]:
            best = (val_auroc, ep, state.params)
        bar.set_postfix(
            loss=f"{float(loss):.3f}", val_auroc=f"{val_auroc:.3f}", best=best[1], refresh=False
        )
        if ep - best[1] >= patience:
            break
    bar.close()
    return TrainResult(best[2], best[1], history, time.perf_counter() - t0)


def evaluate(params: hk.Params, split: data_lib.Split, **model_config: Any) -> dict:
    """Metrics of the model on a split (threshold: logit 0, i.e. probability 0.5)."""
    logits = predict_batched(model_lib.make_model(**model_config).apply, params, split.x)
    return metrics_lib.classification_metrics(split.y, logits)


def majority_baseline(split: data_lib.Split) -> dict:
    """Metrics of always predicting 'non-hemolytic' (a constant score)."""
    m = metrics_lib.classification_metrics(split.y, np.full(len(split.y), -1.0))
    return m


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train the hemolysis CNN and save its weights.")
    p.add_argument("--out", type=Path, default=model_lib.pretrained_dir())
    p.add_argument("--name", default=model_lib.PRETRAINED_NAME)
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    settings = {k: getattr(args, k) for k in DEFAULTS}
    result = train(**settings)
    splits = {s: data_lib.load_split(s) for s in data_lib.SPLITS}
    info = {
        "metrics": {s: evaluate(result.params, sp) for s, sp in splits.items()},
        "always_non_hemolytic_test": majority_baseline(splits["test"]),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 1),
        "settings": settings,
        "command": "python -m helpers.training " + " ".join(argv if argv is not None else sys.argv[1:]),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "haiku": hk.__version__,
            "optax": optax.__version__,
        },
        "history": result.history,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    model_lib.save_params(args.out / f"{args.name}.npz", result.params)
    (args.out / f"{args.name}.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps({k: info[k] for k in ("metrics", "best_epoch", "train_seconds")}, indent=1))


if __name__ == "__main__":
    main()
