"""kerasae-runtime's priors on manifolds: the uniform on the sphere (svae) and the wrapped
normal at the origin of the Poincaré ball (poincare_vae), drawn from the manifest's numbers
as kerasae draws them (tests/test_zoo3_geometry.py checks the parity from kerasae's side)."""

import numpy as np
import pytest

from kerasae_runtime import ExportError
from kerasae_runtime import manifest as mf


def test_uniform_sphere_draws_are_unit_normalised_normals():
    spec = {"kind": "uniform_sphere", "dim": 4}
    z = mf.sample_prior(spec, 20000, seed=0)
    assert z.dtype == np.float32 and z.shape == (20000, 4)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-6)
    # uniform on S^3: mean 0, covariance I / 4
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(4) / 4, atol=0.01)
    eps = np.random.default_rng(0).standard_normal((3, 4))  # the seed's semantics
    expect = eps / np.linalg.norm(eps, axis=1, keepdims=True)
    np.testing.assert_allclose(mf.sample_prior(spec, 3, seed=0), expect, rtol=1e-6)


@pytest.mark.parametrize("c, scale", [(1.0, 1.0), (0.5, 0.7)])
def test_wrapped_normal_draws_have_chi_distances_and_stay_in_the_ball(c, scale):
    spec = {"kind": "wrapped_normal", "dim": 3, "curvature": c, "scale": scale}
    z = mf.sample_prior(spec, 20000, seed=1).astype(np.float64)
    norm = np.linalg.norm(z, axis=1)
    assert np.all(np.sqrt(c) * norm < 1.0)
    # the geodesic distance to the origin, 2 artanh(sqrt(c) |z|) / sqrt(c), is |u|,
    # u ~ N(0, scale^2 I): scale times a chi with 3 degrees of freedom
    dist = 2.0 * np.arctanh(np.sqrt(c) * norm) / np.sqrt(c)
    assert np.mean(dist**2) == pytest.approx(3 * scale**2, rel=0.03)
    # the direction is uniform
    np.testing.assert_allclose((z / norm[:, None]).mean(axis=0), 0.0, atol=0.02)


def test_damaged_manifold_priors_are_refused():
    for spec, key in (
        ({"kind": "wrapped_normal", "dim": 2, "curvature": 1.0}, "'scale'"),
        ({"kind": "wrapped_normal", "dim": 2, "curvature": -1.0, "scale": 1.0}, "positive"),
        ({"kind": "wrapped_normal", "dim": 2, "curvature": "x", "scale": 1.0}, "curvature"),
    ):
        with pytest.raises(ExportError, match=key):
            mf.sample_prior(spec, 2, seed=0)
    assert {"uniform_sphere", "wrapped_normal"} <= set(mf.PRIOR_KINDS)
