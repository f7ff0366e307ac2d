import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import data as D
from helpers import model as M
from helpers import training as T


def _toy_split(n=96, length=12, seed=0):
    """A separable toy task: peptides with a W are positive."""
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("AKLG"), size=rng.integers(3, length))) for _ in range(n)]
    seqs = [s[:-1] + "W" if i % 2 else s for i, s in enumerate(seqs)]
    from helpers.sequences import encode_batch

    return D.Split(encode_batch(seqs, length=length), np.array([i % 2 for i in range(n)], np.int32), seqs)


def test_update_is_pure_and_lowers_the_loss():
    model = M.make_model()
    sp = _toy_split()
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(sp.x[:1]))
    opt = T.make_optimizer(learning_rate=1e-2, weight_decay=0.0, total_steps=100)
    state = T.TrainState(params, opt.init(params), jnp.zeros([], jnp.int32))
    update = T.make_update(model, opt)
    batch = T.Batch(jnp.asarray(sp.x), jnp.asarray(sp.y, jnp.float32))
    s1, l1 = update(state, batch)
    s1b, l1b = update(state, batch)  # same input, same output: no hidden state
    assert float(l1) == float(l1b) and int(s1.step) == 1
    for a, b in zip(jax.tree_util.tree_leaves(s1.params), jax.tree_util.tree_leaves(s1b.params), strict=True):
        np.testing.assert_array_equal(a, b)
    s = s1
    for _ in range(30):
        s, loss = update(s, batch)
    assert float(loss) < 0.5 * float(l1)


def test_train_learns_a_toy_task_and_is_deterministic():
    tr, va = _toy_split(seed=0), _toy_split(seed=1)
    kw = dict(train_split=tr, val_split=va, epochs=30, batch_size=16, patience=30, progress=False)
    r1, r2 = T.train(**kw), T.train(**kw)
    assert max(h["val_auroc"] for h in r1.history) > 0.95
    assert r1.history == r2.history  # same seed, same run
    r3 = T.train(**{**kw, "seed": 1})
    assert r3.history != r1.history


def test_train_rejects_bad_settings():
    tr = _toy_split(n=8)
    with pytest.raises(ValueError, match="fewer than one batch"):
        T.train(train_split=tr, val_split=tr, batch_size=64, progress=False)
    with pytest.raises(ValueError, match="positive"):
        T.train(train_split=tr, val_split=tr, epochs=0, progress=False)


def test_majority_baseline():
    sp = _toy_split()
    m = T.majority_baseline(sp)
    assert m["accuracy"] == pytest.approx(0.5) and m["auroc"] == 0.5 and m["mcc"] == 0.0


@pytest.mark.slow
def test_retraining_from_the_same_seed_reproduces_the_shipped_model():
    """Retrain with the recorded settings; the test AUROC must land within 0.02.

    The tolerance is measured, not guessed: retrained on our 2-core machine the test AUROC
    is 0.8453 with two cores and 0.8453 on one (`taskset -c 0`, where XLA sums in another
    order), against 0.8443 recorded for the shipped weights; seeds 1 and 2 give 0.833 and
    0.830. A machine's rounding moves it by about 0.001, another seed by up to 0.015."""
    params, info = M.load_pretrained()
    result = T.train(progress=False, **info["settings"])
    test = D.load_split("test")
    auroc = T.evaluate(result.params, test)["auroc"]
    assert abs(auroc - info["metrics"]["test"]["auroc"]) < 0.02
    assert abs(T.evaluate(params, test)["auroc"] - info["metrics"]["test"]["auroc"]) < 1e-6
