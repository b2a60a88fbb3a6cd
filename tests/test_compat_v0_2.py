"""What kerasae 0.2.0 wrote still works, and training repeats it (tests/fixtures/v0_2).

The fixtures were recorded by tests/fixtures/v0_2/record.py on commit efdaa0f, before the
architecture-v2 move: a refactor must leave training histories, saved models, exports,
fitted samplers and constructor signatures as they were.
"""

import csv
import json
import os

import numpy as np
import pytest
from helpers import run_cli

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "v0_2")
RUNS = ("ae", "vae", "wae", "vq_vae")


def read_history(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


DROPPED = ("beta", "val_beta")  # a constant KL weight is no longer logged


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["0", "1"], ids=["recorded-kernels", "onednn-default"])
@pytest.mark.parametrize("model", RUNS)
def test_training_repeats_the_recorded_history(model, onednn, tmp_path):
    """With TensorFlow's own kernels (TF_ENABLE_ONEDNN_OPTS=0, as on the recording machine)
    the arithmetic is unchanged: bitwise where TOLERANCE says 0. With kerasae's default
    (oneDNN's convolutions, kerasae/onednn.py) the same training within float noise."""
    out = tmp_path / model
    result = run_cli(
        "train",
        "--model",
        model,
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--out",
        out,
        "--quiet",
        env={"TF_ENABLE_ONEDNN_OPTS": onednn},
    )
    assert result.returncode == 0, result.stderr
    now = read_history(out / "history.csv")
    then = read_history(os.path.join(HERE, "histories", f"{model}.csv"))
    # 0.3 logs beta only while BetaAnnealing moves it (a constant was a flat chart): the
    # one column 0.2 wrote that is gone on purpose; every other is kept, in order
    then = [{k: v for k, v in row.items() if k not in DROPPED} for row in then]
    assert [list(r) for r in now] == [list(r) for r in then]  # the same columns, in order
    # under oneDNN, metrics an adversary or a codebook assignment amplifies (wae's
    # gen_loss, vq_vae's perplexity) drift by percents in two epochs: the losses alone;
    # on another CPU's kernels (AVX-512) the same holds
    strict = onednn == "0" and not avx512()
    for new, old in zip(now, then):
        for key in old if strict else [k for k in old if k in ("loss", "val_loss")]:
            np.testing.assert_allclose(
                float(new[key]),
                float(old[key]),
                rtol=TOLERANCE[model] if strict else SUM_ORDER_TOLERANCE,
                err_msg=f"{model} {key} epoch {old['epoch']}",
            )


#: relative tolerance per family: 0 (bitwise) wherever the arithmetic is unchanged. vae's
#: KL and Bernoulli likelihood are now the plain-ops formulas scorer.onnx shares (0.2 used
#: tfp's kl_divergence and log_prob: expm1 and multiply_no_nan, the same values rounded
#: differently): measured 3.1e-7 at most (2-3 float32 ulps, the total loss bitwise equal),
#: so 1e-5; a real change (a weight, a sign, a draw) moves these figures by over 1e-3.
TOLERANCE = {"ae": 0, "wae": 0, "vq_vae": 0, "vae": 1e-5}
#: oneDNN's convolutions and matmuls sum in another order: the losses moved by 1.4e-5 (wae)
#: and 1.5e-6 (vq_vae) relative after two epochs. On a CPU with AVX-512, Eigen's kernels
#: sum in another order than the recording machine's (AVX2 and FMA) too: wae's losses moved
#: by 2.5e-4 relative after two epochs, its gen_loss and vq_vae's codebook metric by 1.7e-5
#: after one. In both cases the losses alone are compared, at this tolerance
SUM_ORDER_TOLERANCE = 1e-3


def avx512():
    """Whether this CPU has AVX-512 (the fixtures were recorded on one without)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


@pytest.mark.parametrize("model", RUNS)
def test_a_saved_model_and_its_run_load_and_give_the_same_outputs(model):
    import kerasae

    run = os.path.join(HERE, "runs", model)
    expected = np.load(os.path.join(run, "outputs.npz"))
    loaded = kerasae.load_model(os.path.join(run, "model.keras"))
    x = expected["x"]
    np.testing.assert_allclose(loaded.encode(x), expected["encode"], atol=1e-6)
    np.testing.assert_allclose(loaded.decode(expected["encode"]), expected["decode"], atol=1e-6)
    np.testing.assert_allclose(loaded.reconstruct(x), expected["reconstruct"], atol=1e-6)
    np.testing.assert_allclose(loaded.score(x), expected["score"], rtol=1e-5, atol=1e-6)
    if "sample" in expected.files:
        np.testing.assert_allclose(loaded.sample(8, seed=3), expected["sample"], atol=1e-6)


@pytest.mark.parametrize("name", ("gmm", "two_stage"))
def test_a_fitted_sampler_loads_and_draws_the_same_codes(name):
    from kerasae.samplers.base import LatentSampler

    run = os.path.join(HERE, "runs", "ae")
    sampler = LatentSampler.load(os.path.join(run, "samplers", name))
    np.testing.assert_allclose(
        sampler.sample_latent(8, seed=3),
        np.load(os.path.join(run, "outputs.npz"))[f"{name}_codes"],
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("model", RUNS)
def test_an_export_of_the_old_release_runs_and_matches_its_model(model):
    ort = pytest.importorskip("onnxruntime")
    run = os.path.join(HERE, "runs", model)
    expected = np.load(os.path.join(run, "outputs.npz"))
    with open(os.path.join(run, "export", "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["format"] == "kerasae-export" and manifest["format_version"] == 1
    session = ort.InferenceSession(
        os.path.join(run, "export", "decoder.onnx"), providers=["CPUExecutionProvider"]
    )
    z = expected["encode"].astype("float32")
    out = session.run(None, {session.get_inputs()[0].name: z})[0]
    np.testing.assert_allclose(out, expected["decode"], atol=1e-5)


#: the families that take the user's own networks since 0.3 (encoder=, decoder=)
OWN_NETWORKS = {
    "ae",
    "conv_ae",
    "dae",
    "rae",
    "sparse_ae",
    "vae",
    "beta_vae",
    "iwae",
    "beta_tcvae",
    "info_vae",
    "vamp",
    "factor_vae",
    "aae",
    "wae",
}


#: arguments added since 0.2 whose default keeps 0.2's model: vq_vae's mlp variant (issue
#: 31) reads hidden_units, which its conv networks ignore
ADDED = {"vq_vae": {"hidden_units": "(512, 256)"}}


def test_every_built_in_family_keeps_its_constructor_arguments():
    """Each family now declares only what it adds or changes; merged, its arguments and
    defaults are those of 0.2 (the order of a few moved: a subclass's own follow its
    parent's), plus encoder=None, decoder=None where the user may bring networks, plus
    the ADDED arguments whose defaults leave 0.2's models as they were."""
    from kerasae.models.registry import get_model_class
    from kerasae.params import signature_params

    with open(os.path.join(HERE, "signatures.json")) as f:
        recorded = json.load(f)
    for name, params in recorded.items():
        now = {k: repr(v) for k, v in signature_params(get_model_class(name)).items()}
        networks = {"encoder": "None", "decoder": "None"} if name in OWN_NETWORKS else {}
        assert now == {**dict(params), **networks, **ADDED.get(name, {})}, name
        assert list(now)[:2] == ["input_shape", "latent_dim"], name


@pytest.mark.slow
def test_a_run_of_the_old_release_evaluates(tmp_path):
    import shutil

    run = tmp_path / "vae"
    shutil.copytree(os.path.join(HERE, "runs", "vae"), run)
    result = run_cli("evaluate", run, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["model"] == "vae"
