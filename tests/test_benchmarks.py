"""The side-by-side checks of benchmarks/compare_libraries.py against Captum, shap and lime,
as tests. They need the optional packages of benchmarks/requirements.txt and skip without
them (`.ci/run` installs them in a last step and runs this file)."""

import importlib.util
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
pytest.importorskip("shap")
pytest.importorskip("lime")

from helpers import model as model_lib  # noqa: E402
from helpers import sequences as seqs_lib  # noqa: E402

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_libraries.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("compare_libraries", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def models(bench):
    params, _ = model_lib.load_pretrained()
    return model_lib.predict_fn(params), bench.torch_cnn(params)


def test_torch_port_gives_the_same_logits(bench, models):
    f, module = models
    x = seqs_lib.encode_batch(bench.pick_peptides(20))
    # also points off the one-hot corners, as IG paths and noise visit them
    rng = np.random.default_rng(0)
    mixed = (x * rng.uniform(0, 1, x.shape[:2] + (1,)) + rng.uniform(0, 0.1, x.shape)).astype(np.float32)
    for inputs in (x, mixed):
        want = np.asarray(f(jnp.asarray(inputs)))
        got = module(torch.tensor(inputs)).detach().numpy()
        assert np.abs(got - want).max() < 1e-5


def test_integrated_gradients_agree_with_captum(bench, models):
    r = bench.compare_ig(*models, bench.pick_peptides(4), repeats=1)
    assert r["max_abs_diff"] < bench.IG_TOLERANCE and r["scale"] > 0.1
    # Captum's trapezoid weights sum to 64 / 65: its attributions are ours times that
    assert abs(r["trapezoid_ratio"] - 64 / 65) < 1e-5
    assert r["trapezoid_rescaled_diff"] < bench.IG_TOLERANCE


def test_shapley_agrees_with_shap(bench, models):
    r = bench.compare_shapley(models[0], bench.pick_peptides(3, min_len=8, max_len=12), repeats=1)
    assert r["exact_diff"] < bench.EXACT_TOLERANCE
    assert r["calls_exact_ours"] == r["calls_exact_ref"]  # both evaluate all 2^n coalitions
    assert r["z_max"] < 5
    assert 0 < r["err_ours"] < 0.5 and 0 < r["err_ref"] < 0.5  # sampled, so not exact, but close


def test_lime_agrees_with_lime(bench, models):
    r = bench.compare_lime(models[0], bench.pick_peptides(3, min_len=8), repeats=1)
    assert r["rho_min"] > 0.8 and r["overlap"] >= 2 / 3
    assert r["calls_ref"] == bench.LIME_SAMPLES


def test_script_prints_the_table(bench, capsys):
    assert bench.main(["--peptides", "2", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n| ") == 5  # the header and four rows
    assert "Captum" in out and "shap" in out and "lime" in out
