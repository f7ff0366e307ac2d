"""Damped influence on the shipped CNN itself (all its parameters), chapter 9's last study.

Shape glossary: N training peptides, P = 33 280 parameters of the whole CNN (conv layers
included), L = 190 positions, A = 21 channels.

The shipped CNN (`helpers.model.load_pretrained`) was trained by AdamW with early stopping:
it is not at a minimum of its training objective

    R(theta) = (1 / N) sum_i loss_i(theta) + (WEIGHT_DECAY / 2) |theta|^2

(|grad R| is far from zero there) and the loss is not convex, so the Hessian H may have
negative eigenvalues. Koh & Liang (2017, sec. 4.2) add a damping d I to H; Bae et al. (2022)
show that damped influence at parameters that are not a minimum estimates a *proximal*
response that starts from those parameters, not leave-one-out. This module computes

  - `s = (H + d I)^-1 g` by conjugate gradients, for g the gradient of the test peptide's
    loss and of its logit f(x_test) (influence on the prediction itself);
  - the predicted effect of removing training peptide j: `grad loss_j . s / N`;
  - what it estimates, by retraining: the *tilted proximal response*
        theta_j = argmin R_w(theta) - grad R(theta0) . (theta - theta0) + (d / 2) |theta - theta0|^2
    with w = 1 but w_j = 0, started at theta0 = the shipped parameters. The linear tilt
    makes theta0 a stationary point of the objective with every peptide in (Bae et al.'s
    PBRF does the same with a Bregman divergence in output space), so the change theta_j -
    theta0 is the response to the removal alone, and damped influence is exactly its
    first-order approximation. With `H + d I` indefinite the objective has no minimum near
    theta0 and the fit runs off: that is why the damping is needed.

`python -m helpers.influence_cnn` writes `helpers/pretrained/influence_cnn.npz` (chapter 9).
Two things the whole CNN needs that the small models of the tests do not:

  - the solvers' loops run from the host (`loop="host"`): on CPU one Hessian-vector product
    on the whole training set (4489 peptides) took 0.56 s called from Python but about 15 s
    per iteration inside a `lax.while_loop`/`scan` (jax 0.10.2, measured); the refits use
    `influence_solvers.lbfgs_host` for the same reason;
  - in float32 the refits do not converge within `fit_maxiter` steps. The objective's value
    (about 0.43, rounding step about 3e-8) cannot resolve the decrease a typical removal
    allows (below 1e-8), so the line search mostly judges steps by their slope (Hager &
    Zhang's approximate Wolfe conditions); but the largest removals, whose decrease is
    resolvable, stop short too, for a reason not established. The gradient itself
    is accurate (with nothing removed the tilted gradient at theta0 is below 1e-7, far below
    a typical pull |grad loss_j| / N of about 2.5e-4). The study records the test loss and
    logit after every step (`fit_path`), which shows how far the measured change has
    settled. float64 would resolve the value; on this CPU it took about 15 s per step.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from helpers import influence, influence_solvers, validation

CNN_FILE = "influence_cnn.npz"
WEIGHT_DECAY = 1e-3  # the shipped training's (AdamW's, decoupled), here as the L2 term of R
# H + d I must be positive definite. Lanczos on the shipped parameters finds a Ritz value of
# -1.33 on the whole training set (40 steps) and -2.34 on its first 200 peptides (the same
# after 20, 40 and 60 steps). A Ritz value only bounds the smallest eigenvalue from above: it
# proves that every d <= 1.33 leaves negative curvature (so 0.1 and 1 cannot be used), not
# that 3 is enough; CG's `negative_curvature` flag, stored with the study, is the check.
DAMPINGS = (3.0, 10.0)
# `--small`, the smoke test `tests/test_influence.py` reruns: a subset, one damping above 2.34
SMALL = dict(n_train=200, dampings=(5.0,), largest=1, random=1, cg_maxiter=60, fit_maxiter=60, undamped_maxiter=10,
             lanczos_steps=20)


@functools.lru_cache(maxsize=1)
def _apply():
    from helpers import model as model_lib

    return model_lib.make_model().apply


def cnn_loss(params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example loss `[B]` of the whole CNN on one-hot `x [B, L, A]`: binary cross-entropy
    of its logits against `y [B]` (the interface of `helpers.influence`)."""
    return optax.sigmoid_binary_cross_entropy(_apply()(params, x), y)


def cnn_logit(params, x: jax.Array, y: jax.Array) -> jax.Array:
    """The logits `[B]` f(x) as a 'loss' that ignores `y`: its gradient is the gradient of the
    prediction, what influence on the prediction uses instead of the loss's."""
    del y
    return _apply()(params, x)


class TiltedFit(NamedTuple):
    params: Any  # the refitted parameters theta_j
    iterations: int  # L-BFGS steps
    rel_grad: float  # |grad of the tilted objective| at the end / the removal's pull |grad loss_j| / N
    converged: bool  # rel_grad <= rtol (not stopped by maxiter or float32's floor)


def _tilted(loss_fn, t, params, x, y, w, g0, weight_decay, damping):
    """The tilted proximal objective (module docstring) at flat parameters `t`, from theta0 = `params`."""
    theta0, unravel = influence.flatten(params)
    dt = t - theta0
    base = influence._objective(loss_fn, unravel, x, y, weight_decay)
    return base(t, w) - jnp.vdot(g0, dt) + 0.5 * damping * jnp.vdot(dt, dt)


@functools.lru_cache(maxsize=4)
def _tilted_objective(loss_fn):
    """`_tilted` for one `loss_fn`, one function object (so `lbfgs_host` compiles it once)."""
    return functools.partial(_tilted, loss_fn)


@functools.partial(jax.jit, static_argnames="loss_fn")
def _start_gradient(params, x, y, weight_decay, *, loss_fn):
    """grad R at theta0 with every peptide in (the tilt)."""
    theta0, unravel = influence.flatten(params)
    base = influence._objective(loss_fn, unravel, x, y, weight_decay)
    return jax.grad(base)(theta0, jnp.ones(x.shape[0], theta0.dtype))


@functools.partial(jax.jit, static_argnames=("loss_fn", "maxiter"))
def _tilted_fit_device(params, x, y, w, g0, weight_decay, damping, tol, *, loss_fn, maxiter):
    theta0, unravel = influence.flatten(params)

    def fun(t):
        return _tilted(loss_fn, t, params, x, y, w, g0, weight_decay, damping)

    t, k, gn = influence.lbfgs_while(fun, theta0, maxiter=maxiter, tol=tol)
    return unravel(t), k, gn


def tilted_fit(loss_fn, params, x, y, *, removed: int, weight_decay: float, damping: float,
               rtol: float = 1e-3, maxiter: int = 200, loop: str = "device", on_step=None) -> TiltedFit:
    """The tilted proximal response to removing training example `removed` (module
    docstring), by L-BFGS from `params` until the objective's gradient is `rtol` times its
    value at `params`, the removal's pull |grad loss_removed| / N (computed from that one
    example, free of the rounding of the full sums), or `maxiter` steps. `loop='host'` runs
    the L-BFGS loop from Python (`influence_solvers.lbfgs_host`): the whole CNN's gradients
    are many times slower inside a compiled loop on CPU; there `on_step(steps, params)` is
    called after every step. Iterates differ between the two loops (optax's zoom line search
    on the device, backtracking on the host); the minimum is the same."""
    x, y = influence.check_examples(x, y)
    n = x.shape[0]
    removed = validation.check_int(removed, "removed", minimum=0, maximum=n - 1)
    damping = validation.check_number(damping, "damping", nonnegative=True)
    weight_decay = validation.check_number(weight_decay, "weight_decay", nonnegative=True)
    validation.check_number(rtol, "rtol", positive=True)
    validation.check_int(maxiter, "maxiter", minimum=1)
    influence_solvers.check_loop(loop)
    if on_step is not None:
        validation.check_callable(on_step, "on_step")
        if loop == "device":
            raise ValueError("on_step needs loop='host' (the device loop runs as one compiled program)")
    pull = float(jnp.linalg.norm(influence.per_example_grads(loss_fn, params, x[removed:removed + 1],
                                                             y[removed:removed + 1])[0])) / n
    if not pull > 0:
        raise ValueError(f"training example {removed} (removed) has a zero loss gradient at params: removing it "
                         f"moves nothing to first order, so there is no response to fit; pick another example")
    theta0, unravel = influence.flatten(params)
    w = jnp.ones(n, theta0.dtype).at[removed].set(0.0)
    g0 = _start_gradient(params, x, y, weight_decay, loss_fn=loss_fn)
    if loop == "device":
        p, k, gn = _tilted_fit_device(params, x, y, w, g0, weight_decay, damping, rtol * pull, loss_fn=loss_fn,
                                      maxiter=int(maxiter))
        rel = float(gn) / pull
        return TiltedFit(p, int(k), rel, rel <= rtol)
    fun = _tilted_objective(loss_fn)
    args = (params, x, y, w, g0, weight_decay, damping)
    step_cb = None if on_step is None else (lambda k, t: on_step(k, unravel(t)))
    fit = influence_solvers.lbfgs_host(fun, theta0, args=args, maxiter=int(maxiter), tol=rtol * pull, on_step=step_cb)
    rel = fit.grad_norm / pull
    return TiltedFit(unravel(fit.theta), fit.steps, rel, rel <= rtol)


def test_gradients(params, x_test, y_test) -> jax.Array:
    """`[2, P]`: the gradient of the test peptide's loss and of its logit (`x_test [1, L, A]`)."""
    g_loss = influence.per_example_grads(cnn_loss, params, x_test, y_test)[0]
    g_logit = influence.per_example_grads(cnn_logit, params, x_test, y_test)[0]
    return jnp.stack([g_loss, g_logit])


def cnn_study(*, dampings: tuple[float, ...] = DAMPINGS, largest: int = 3, random: int = 5, seed: int = 0,
              cg_tol: float = 1e-4, cg_maxiter: int = 150, fit_rtol: float = 1e-3, fit_maxiter: int = 60,
              undamped_maxiter: int = 30, lanczos_steps: int = 40, n_train: int | None = None,
              loop: str = "host", command: str = "") -> dict[str, np.ndarray]:
    """Damped influence of every training peptide on the shipped CNN's worst test error
    (the test peptide of highest loss), on its loss and on its logit, for each damping;
    then the tilted proximal retraining (module docstring) without the `largest` training
    peptides of largest predicted |effect on the loss| at `dampings[0]` and `random` drawn
    with `seed`, at every damping. First, `lanczos_steps` of Lanczos on H: a damping at or
    below minus its smallest Ritz value leaves H + d I not positive definite and is refused.
    `n_train` keeps the first n training peptides (tests); `loop` is the solvers'
    (`check_loop`); the per-step path `fit_path` is recorded with loop='host' only (NaN
    with 'device')."""
    from helpers import data as data_lib
    from helpers import model as model_lib
    from helpers import spectrum

    if isinstance(dampings, (int, float, str)) or not hasattr(dampings, "__iter__"):
        raise TypeError(f"dampings must be a tuple of dampings, got {dampings!r}: write ({dampings!r},) for one")
    dampings = tuple(validation.check_number(d, "dampings", positive=True) for d in dampings)
    if not dampings:
        raise ValueError("dampings must name at least one damping, e.g. (3.0, 10.0)")
    validation.check_number(cg_tol, "cg_tol", positive=True)
    validation.check_number(fit_rtol, "fit_rtol", positive=True)
    validation.check_int(cg_maxiter, "cg_maxiter", minimum=1)
    validation.check_int(fit_maxiter, "fit_maxiter", minimum=1)
    validation.check_int(undamped_maxiter, "undamped_maxiter", minimum=1)
    if not isinstance(command, str):
        raise TypeError(f"command must be a string (the command recorded in the file), got {type(command).__name__}")
    validation.check_int(largest, "largest", minimum=1)
    validation.check_int(random, "random", minimum=0)
    validation.check_int(seed, "seed", minimum=0)
    validation.check_int(lanczos_steps, "lanczos_steps", minimum=2)
    influence_solvers.check_loop(loop)
    params, _ = model_lib.load_pretrained()
    train, test = data_lib.load_split("train"), data_lib.load_split("test")
    x, y = jnp.asarray(train.x), jnp.asarray(train.y, jnp.float32)
    if n_train is not None:
        validation.check_int(n_train, "n_train", minimum=largest + random + 1, maximum=x.shape[0])
        x, y = x[:n_train], y[:n_train]
    n = x.shape[0]
    xt, yt = jnp.asarray(test.x), jnp.asarray(test.y, jnp.float32)
    test_losses = np.concatenate([np.asarray(cnn_loss(params, xt[i : i + 512], yt[i : i + 512]))
                                  for i in range(0, len(yt), 512)])
    ti = int(np.argmax(test_losses))
    x1, y1 = xt[ti : ti + 1], yt[ti : ti + 1]
    theta0, _ = influence.flatten(params)
    g_start = _start_gradient(params, x, y, WEIGHT_DECAY, loss_fn=cnn_loss)
    hvp = influence.make_hvp(cnn_loss, params, x, y, weight_decay=WEIGHT_DECAY)
    lz = spectrum.lanczos(hvp, theta0.size, jax.random.PRNGKey(seed), steps=lanczos_steps, loop=loop)
    lowest = float(lz.ritz_values[0])
    if lowest < 0 and min(dampings) <= -lowest:
        raise ValueError(f"dampings must exceed {-lowest:.3g}: the Hessian has a Ritz value {lowest:.3g} "
                         f"({lanczos_steps} Lanczos steps), so H + d I is not positive definite for d <= {-lowest:.3g}; "
                         f"got {dampings}")
    g = test_gradients(params, x1, y1)  # [2, P]
    undamped = influence.conjugate_gradient(hvp, g[0], maxiter=undamped_maxiter, tol=cg_tol, loop=loop)
    out = {"config_command": np.array(command), "config_seed": np.array(seed),
           "config_dampings": np.array(dampings), "config_weight_decay": np.array(WEIGHT_DECAY),
           "config_cg_tol": np.array(cg_tol), "config_fit_rtol": np.array(fit_rtol), "config_n_train": np.array(n),
           "config_lanczos_steps": np.array(lanczos_steps), "config_fit_maxiter": np.array(fit_maxiter),
           "test_index": np.array(ti), "test_loss": np.array(test_losses[ti]),
           "test_logit": np.asarray(cnn_logit(params, x1, y1))[0],
           "grad_norm": np.array(float(jnp.linalg.norm(g_start))),
           "ritz_values": lz.ritz_values, "ritz_error_bounds": lz.error_bounds,
           "undamped_negative_curvature": np.asarray(undamped.negative_curvature),
           "undamped_iterations": np.asarray(undamped.iterations)}
    solves, removal = [], []
    for d in dampings:
        s = influence.conjugate_gradient(hvp, g, damping=d, tol=cg_tol, maxiter=cg_maxiter, loop=loop)
        solves.append(s)
        removal.append(np.asarray(influence.directional_derivatives(cnn_loss, params, x, y, s.x)) / n)  # [2, N]
    removal = np.stack(removal)  # [D, 2, N]: predicted change of (test loss, test logit) without i
    # the limit of large damping, d (H + d I)^-1 -> I: plain gradient similarity grad loss_i . g / N
    gradient_dot = np.asarray(influence.directional_derivatives(cnn_loss, params, x, y, g)) / n  # [2, N]
    top = np.argsort(-np.abs(removal[0, 0]))[:largest]
    rest = np.setdiff1d(np.arange(n), top)
    rand = np.random.default_rng(seed).choice(rest, random, replace=False)
    removed = np.concatenate([top, rand])
    actual = np.zeros((len(dampings), 2, len(removed)))
    iters = np.zeros((len(dampings), len(removed)), int)
    fit_gn = np.zeros((len(dampings), len(removed)))
    converged = np.zeros((len(dampings), len(removed)), bool)
    # (test loss, test logit) after every L-BFGS step: in float32 the refits stop short of
    # fit_rtol (module docstring), so the path shows whether the measured change has settled
    path = np.full((len(dampings), len(removed), fit_maxiter, 2), np.nan)
    for a, d in enumerate(dampings):
        for r, j in enumerate(removed):
            def follow(k, p, a=a, r=r):
                path[a, r, k - 1] = float(cnn_loss(p, x1, y1)[0]), float(cnn_logit(p, x1, y1)[0])

            fit = tilted_fit(cnn_loss, params, x, y, removed=int(j), weight_decay=WEIGHT_DECAY, damping=float(d),
                             rtol=fit_rtol, maxiter=fit_maxiter, loop=loop, on_step=follow if loop == "host" else None)
            print(f"d = {d:g}, removal {r + 1}/{len(removed)}: {fit.iterations} steps, relative gradient "
                  f"{fit.rel_grad:.2g}", flush=True)
            actual[a, 0, r] = float(cnn_loss(fit.params, x1, y1)[0]) - test_losses[ti]
            actual[a, 1, r] = float(cnn_logit(fit.params, x1, y1)[0]) - out["test_logit"]
            iters[a, r], fit_gn[a, r], converged[a, r] = fit.iterations, fit.rel_grad, fit.converged
    out.update({
        "s": np.stack([np.asarray(s.x) for s in solves]),  # [D, 2, P]
        "cg_iterations": np.stack([np.asarray(s.iterations) for s in solves]),  # [D, 2]
        "cg_residual": np.stack([np.asarray(s.residual) for s in solves]),
        "cg_negative_curvature": np.stack([np.asarray(s.negative_curvature) for s in solves]),
        "removal": removal.astype(np.float32), "gradient_dot": gradient_dot.astype(np.float32), "removed": removed,
        "chosen": np.array(["largest"] * largest + ["random"] * random),
        "predicted": removal[:, :, removed],  # [D, 2, R]
        "actual": actual, "fit_iterations": iters, "fit_rel_grad": fit_gn, "fit_converged": converged,
        "fit_path": (path - np.array([test_losses[ti], out["test_logit"]])).astype(np.float32),  # [D, R, K, 2] changes
    })
    return out


def load(path=None) -> dict[str, np.ndarray]:
    """Every array of the shipped `influence_cnn.npz` (or of the file at `path`)."""
    from helpers import influence_experiments

    return influence_experiments.load_study(CNN_FILE, path)


def main(argv=None) -> None:
    import argparse
    import sys
    import time

    from helpers import model as model_lib

    p = argparse.ArgumentParser(prog="python -m helpers.influence_cnn",
                                description=f"Damped influence on the whole shipped CNN ({CNN_FILE}).")
    p.add_argument("--out", default=None, help="output .npz (default: the shipped file)")
    p.add_argument("--small", action="store_true",
                   help=f"{SMALL['n_train']} training peptides, damping {SMALL['dampings'][0]}, 1+1 removals: a smoke test")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    # the settings, not where the file goes: `--out` is left out of the recorded command
    command = "python -m helpers.influence_cnn" + (" --small" if a.small else "")
    kw = SMALL if a.small else {}
    out = cnn_study(command=command, **kw)
    out_path = a.out or str(model_lib.pretrained_dir() / CNN_FILE)
    np.savez_compressed(out_path, **out)
    print(f"{CNN_FILE}: done in {time.perf_counter() - t0:.0f} s -> {out_path}")


if __name__ == "__main__":
    main()
