"""Other latent geometries: svae (von Mises-Fisher on the sphere, Davidson et al. 2018) and
poincare_vae (wrapped normal on the Poincaré ball, Mathieu et al. 2019).

The formulas against references: log I_v against scipy, the vMF KL against tfp's entropy
and a Monte Carlo estimate, Wood's sampler's moments and gradients against the exact
derivative of E[mu.z]; the ball's maps inverse of each other and inside the ball, the
wrapped normal's density against a numerical Jacobian and integrating to 1; `log_weights`
by hand; kerasae_runtime's draws equal to the model's. Slow: `kerasae train` for each.
"""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import special

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.probability import poincare as pb
from kerasae.probability import von_mises_fisher as vmf
from kerasae_runtime.manifest import sample_prior

TINY = {"hidden_units": (16,), "filters": (4, 8)}


def tiny(name, latent_dim=3, **kwargs):
    return kerasae.create_model(
        name, input_shape=(8, 8, 1), latent_dim=latent_dim, **{**TINY, **kwargs}
    )


def f64(*arrays):
    return [tf.constant(np.asarray(a, "float64")) for a in arrays]


# ------------------------------------------------------------------ von Mises-Fisher
def test_log_bessel_matches_scipy_on_both_branches():
    kappa = np.array([1e-4, 0.1, 1.0, 5.0, 30.0, 63.0, 65.0, 100.0, 300.0, 1e3, 5e3])
    for v in (0.0, 0.5, 1.5, 4.0, 15.0):
        ours = vmf.log_bessel_iv(v, tf.constant(kappa)).numpy()
        ref = np.log(special.ive(v, kappa)) + kappa
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def scipy_vmf_kl(kappa, m):
    """The KL to the uniform as pythae 0.1.2 writes it, with scipy's ive."""
    v = m / 2 - 1
    ratio = special.ive(m / 2, kappa) / special.ive(v, kappa)
    log_c = v * np.log(kappa) - m / 2 * np.log(2 * np.pi) - np.log(special.ive(v, kappa)) - kappa
    return kappa * ratio + log_c + np.log(2) + m / 2 * np.log(np.pi) - special.gammaln(m / 2)


def test_vmf_kl_matches_scipy_and_monte_carlo():
    rng = np.random.default_rng(0)
    for m, kappa in ((3, 0.3), (5, 7.0), (10, 40.0), (10, 500.0)):
        kl = vmf.vmf_uniform_kl(*f64([kappa]), m).numpy()[0]
        assert kl == pytest.approx(scipy_vmf_kl(kappa, m), rel=1e-9, abs=1e-9)
        n = 4000
        mu = np.eye(m)[0]
        mus, kappas = np.tile(mu, (n, 1)), np.full((n, 1), kappa)
        z = vmf.vmf_draw(*f64(mus, kappas), *f64(*vmf.wood_noise(rng, n, m)))
        mc = vmf.vmf_log_prob(z, *f64(mus, kappas)).numpy() + vmf.log_sphere_area(m)
        assert abs(mc.mean() - kl) < 4 * mc.std() / math.sqrt(n) + 1e-6
        # the draws are unit vectors with E[mu.z] = A_m(kappa)
        z = z.numpy()
        np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-12)
        a_m = vmf.vmf_mean_resultant(*f64([kappa]), m).numpy()[0]
        assert abs(z[:, 0].mean() - a_m) < 4 * z[:, 0].std() / math.sqrt(n) + 1e-9


@pytest.mark.slow
def test_vmf_kl_is_tfps_entropy():
    import tensorflow_probability as tfp  # seconds to import: only this test needs it

    for m, kappa in ((3, 0.3), (5, 7.0), (10, 40.0)):
        kl = vmf.vmf_uniform_kl(*f64([kappa]), m).numpy()[0]
        q = tfp.distributions.VonMisesFisher(np.eye(m)[0], np.float64(kappa))
        # KL(q || uniform) = -H(q) + log |S^{m-1}|
        assert kl == pytest.approx(-q.entropy().numpy() + vmf.log_sphere_area(m), rel=1e-6)


def test_vmf_density_integrates_to_one_on_the_circle():
    theta = np.linspace(0, 2 * np.pi, 20001)[:-1]
    z = np.stack([np.cos(theta), np.sin(theta)], 1)
    mu, kappa = np.tile([0.6, 0.8], (len(z), 1)), np.full((len(z), 1), 3.0)
    density = np.exp(vmf.vmf_log_prob(*f64(z, mu, kappa)).numpy())
    assert density.mean() * 2 * np.pi == pytest.approx(1.0, rel=1e-6)


def test_sampler_gradients_reach_mu_and_kappa_and_g_rep_is_the_documented_part():
    """The g_rep gradient of E[mu.z] against the exact dA_m/dkappa: close at d=10,
    kappa=20, and below it at d=3, kappa=1 (the rejection correction the module leaves
    out, as the paper's code and pythae do)."""
    rng = np.random.default_rng(1)
    n = 30000
    for m, k0, low, high in ((10, 20.0, 0.9, 1.05), (3, 1.0, 0.7, 0.9)):
        mu = tf.Variable(np.tile(np.eye(m)[1], (n, 1)))
        kappa = tf.Variable(np.full((n, 1), k0))
        with tf.GradientTape() as tape:
            z = vmf.vmf_draw(mu, kappa, *f64(*vmf.wood_noise(rng, n, m)))
            f = tf.reduce_sum(z[:, 1]) / n
        g_mu, g_kappa = tape.gradient(f, [mu, kappa])
        assert np.any(g_mu.numpy() != 0)
        h = 1e-5
        a = [vmf.vmf_mean_resultant(*f64([k]), m).numpy()[0] for k in (k0 - h, k0 + h)]
        exact = (a[1] - a[0]) / (2 * h)
        assert low < g_kappa.numpy().sum() / exact < high


# ------------------------------------------------------------------ Poincaré ball
@pytest.mark.parametrize("c", [1.0, 0.3])
def test_ball_maps_are_inverse_and_stay_inside(c):
    rng = np.random.default_rng(2)
    # geodesic lengths below ~10: beyond ~12 float32's ball edge (BALL_EPS) clips them
    v, x = f64(0.5 * rng.normal(size=(200, 4)), 0.3 * rng.normal(size=(200, 4)))
    x = pb.expmap0(x, c)  # points of the ball
    np.testing.assert_allclose(pb.logmap0(pb.expmap0(v, c), c), v, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(pb.logmap(x, pb.expmap(x, v, c), c), v, rtol=1e-6, atol=1e-8)
    z = pb.expmap(x, 0.5 * v, c)
    np.testing.assert_allclose(pb.expmap(x, pb.logmap(x, z, c), c), z, atol=1e-10)
    # the geodesic distance from 0 to exp_0(v) is lambda_0 |v| = 2 |v|
    d = pb.distance(tf.zeros_like(v), pb.expmap0(0.2 * v, c), c)
    np.testing.assert_allclose(d, 0.4 * np.linalg.norm(v, axis=1), rtol=1e-6)
    far = pb.expmap(x, 100.0 * v, c).numpy()
    assert np.all(c * np.sum(far**2, axis=1) < 1.0)
    # Möbius addition: 0 is its unit, -x its inverse
    np.testing.assert_allclose(pb.mobius_add(x, -x, c), 0.0, atol=1e-12)
    np.testing.assert_allclose(pb.mobius_add(tf.zeros_like(x), z, c), z, atol=1e-12)


def test_wrapped_normal_density_is_the_numerical_jacobian():
    """log q(z) w.r.t. the Riemannian volume = log N(eps) - log|det dz/deps| - d log lambda_z."""
    rng = np.random.default_rng(3)
    c, d = 0.7, 3
    mu = pb.expmap0(*f64(0.4 * rng.normal(size=(1, d))), c)
    log_var = tf.constant(np.log([[0.3, 0.6, 1.2]]))
    h = 1e-6
    for eps in rng.normal(size=(4, d)):
        # central differences, all 2d + 1 points in one call
        points = np.concatenate([eps[None], eps + h * np.eye(d), eps - h * np.eye(d)])
        z = pb.wrapped_normal_draw(mu, log_var, *f64(points), c).numpy()
        jac = (z[1 : d + 1] - z[d + 1 :]).T / (2 * h)  # jac[i, j] = dz_i / deps_j
        log_normal = -0.5 * np.sum(eps**2 + np.log(2 * np.pi))  # eps's density
        lam = pb.conformal_factor(*f64(z[:1]), c).numpy()[0, 0]
        expected = log_normal - np.log(abs(np.linalg.det(jac))) - d * np.log(lam)
        got = pb.wrapped_normal_log_prob(*f64(z[:1]), mu, log_var, c).numpy()[0]
        assert got == pytest.approx(expected, abs=1e-6)


def test_wrapped_normal_integrates_to_one_on_the_disk():
    c = 1.5
    r = (np.arange(600) + 0.5) / 600 / math.sqrt(c)
    t = (np.arange(360) + 0.5) / 360 * 2 * np.pi
    rr, tt = (a.ravel() for a in np.meshgrid(r, t))
    z = np.stack([rr * np.cos(tt), rr * np.sin(tt)], 1)
    mu = np.tile(pb.expmap0(*f64([[0.3, -0.2]]), c).numpy(), (len(z), 1))
    log_q = pb.wrapped_normal_log_prob(*f64(z, mu, np.log([[0.25, 0.5]])), c).numpy()
    lam = 2.0 / (1.0 - c * rr**2)  # Riemannian volume = lambda^2 dz in Lebesgue measure
    area = (r[1] - r[0]) * (t[1] - t[0]) * rr
    assert np.sum(np.exp(log_q) * lam**2 * area) == pytest.approx(1.0, abs=2e-3)


# ------------------------------------------------------------------ the models
@pytest.mark.parametrize("name", ["svae", "poincare_vae"])
def test_log_weights_by_hand(name, digits):
    model = tiny(name)
    x = tf.constant(digits[0][:4])
    got = model.log_weights(x, k=3, seed=(5, 6)).numpy()
    xr, mean, second, z = model.posterior_draws(x, 3, seed=(5, 6))
    nll = model.decoder_nll(xr, z).numpy()
    mean, second, z = (np.asarray(t, "float64") for t in (mean, second, z))
    if name == "svae":
        m, kappa = 3, second[:, 0]
        log_q = (
            (m / 2 - 1) * np.log(kappa)
            - m / 2 * np.log(2 * np.pi)
            - (np.log(special.ive(m / 2 - 1, kappa)) + kappa)
            + kappa * np.sum(mean * z, axis=1)
        )
        log_p = -np.log(4 * np.pi)  # the area of S^2
    else:
        log_q = pb.wrapped_normal_log_prob(*f64(z, mean, second), 1.0).numpy()
        log_p = pb.wrapped_normal_log_prob(*f64(z, 0 * z, 0 * z), 1.0).numpy()
    np.testing.assert_allclose(got.ravel(), -nll + log_p - log_q, rtol=1e-4, atol=1e-3)


def test_encode_is_on_the_manifold_and_samples_are_the_runtime_draws(digits):
    x = digits[0][:16]
    sphere, ball = tiny("svae", latent_dim=4), tiny("poincare_vae", curvature=2.0)
    np.testing.assert_allclose(np.linalg.norm(sphere.encode(x), axis=1), 1.0, atol=1e-5)
    assert np.all(2.0 * np.sum(ball.encode(x) ** 2, axis=1) < 1.0)
    assert sphere.encode_distribution(x)[1].shape == (16, 1)
    for model in (sphere, ball):
        z = sample_prior(model.prior_spec(), 5, seed=3)
        np.testing.assert_array_equal(model.sample(5, seed=3), model.decode(z))
    # the runtime's wrapped normal is kerasae's draw at the origin, for the same numbers
    eps = np.random.default_rng(3).standard_normal((5, 3))
    ours = pb.wrapped_normal_draw(*f64(np.zeros((5, 3)), np.zeros((5, 3)), eps), 2.0)
    np.testing.assert_allclose(sample_prior(ball.prior_spec(), 5, seed=3), ours, rtol=1e-6)


def test_bad_arguments_are_one_line_errors():
    for make, match in (
        (lambda: tiny("svae", latent_dim=1), "latent_dim >= 2"),
        (lambda: tiny("svae", min_concentration=-1), "min_concentration must be >= 0"),
        (lambda: tiny("poincare_vae", curvature=0.0), "curvature must be a positive"),
        (lambda: tiny("poincare_vae", prior_scale=-1), "prior_scale must be a positive"),
    ):
        with pytest.raises(KerasaeError, match=match) as info:
            make()
        assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("name, params", [("svae", ()), ("poincare_vae", ("curvature=0.5",))])
def test_cli_trains_each_family(name, params, tmp_path):
    out = tmp_path / name
    args = ["train", "--model", name, "--dataset", "digits", "--epochs", "3"]
    args += ["--latent-dim", "4", "--out", str(out)]
    for p in params:
        args += ["--param", p]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["model"] == name
    rows = (out / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"loss", "reconstruction", "kl"} <= set(header)
    losses = [float(r.split(",")[header.index("loss")]) for r in rows[1:]]
    assert losses[-1] < losses[0]
    assert (out / "model.keras").exists()
