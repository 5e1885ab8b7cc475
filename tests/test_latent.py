"""Latent paths (lerp, slerp) and 2-D projections (PCA, t-SNE)."""

import numpy as np
import pytest
import torch

from explorer.latent import interpolate, lerp, project, slerp


def test_endpoints():
    z0, z1 = torch.randn(2, 16), torch.randn(2, 16)
    for path in ("lerp", "slerp"):
        frames = interpolate(z0, z1, 7, path)
        assert frames.shape == (7, 2, 16)
        assert torch.allclose(frames[0], z0, atol=1e-5) and torch.allclose(frames[-1], z1, atol=1e-5)


def test_slerp_stays_on_the_circle_of_orthonormal_endpoints():
    z0, z1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    w = torch.linspace(0, 1, 11)
    path = slerp(z0, z1, w)
    assert torch.allclose(path.norm(dim=1), torch.ones(11), atol=1e-6)
    angles = torch.atan2(path[:, 1], path[:, 0])
    assert torch.allclose(angles, w * torch.pi / 2, atol=1e-6)   # constant angular speed
    assert lerp(z0, z1, 0.5).norm() < 0.75                        # lerp cuts the corner


@pytest.mark.parametrize("scale", [2.0, 1.0 + 1e-9, -1.0])
def test_slerp_parallel_and_antiparallel_fall_back_to_lerp(scale):
    z0 = torch.randn(8)
    z1 = scale * z0
    w = torch.linspace(0, 1, 5)
    out = slerp(z0, z1, w)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, lerp(z0, z1, w), atol=1e-5)


def test_slerp_near_parallel_is_continuous():
    z0 = torch.randn(8, dtype=torch.float64)
    z1 = z0 + 1e-4 * torch.randn(8, dtype=torch.float64)
    assert torch.allclose(slerp(z0, z1, 0.3), lerp(z0, z1, 0.3), atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="slerp"):
        interpolate(torch.zeros(2), torch.ones(2), 5, "bezier")
    with pytest.raises(ValueError):
        interpolate(torch.zeros(2), torch.ones(2), 1)


def _clusters(n=150, d=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.zeros((2, d))
    centres[1, 0] = 20.0
    labels = np.repeat([0, 1], n)
    return centres[labels] + rng.normal(size=(2 * n, d)), labels


def test_pca_finds_the_main_axis_and_transforms_new_points():
    x, labels = _clusters()
    proj = project(x, "pca")
    assert proj.points.shape == (len(x), 2)
    gap = abs(proj.points[labels == 0, 0].mean() - proj.points[labels == 1, 0].mean())
    assert gap == pytest.approx(20.0, rel=0.1)
    assert np.allclose(proj.transform(x[:5]), proj.points[:5])


def test_tsne_separates_clusters_and_embeds_new_points():
    x, labels = _clusters()
    proj = project(x, "tsne", perplexity=20, seed=0)
    a, b = proj.points[labels == 0].mean(0), proj.points[labels == 1].mean(0)
    new = proj.transform(x[labels == 1][:5] + 0.01)
    assert np.all(np.linalg.norm(new - b, axis=1) < np.linalg.norm(new - a, axis=1))
    again = project(x, "tsne", perplexity=20, seed=0)
    assert np.allclose(again.points, proj.points)                  # seeded


@pytest.mark.parametrize("perplexity", [100.0, 0.0, float("nan")])
def test_tsne_refuses_bad_perplexity(perplexity):
    x, _ = _clusters(n=20)
    with pytest.raises(ValueError, match="perplexity"):
        project(x, "tsne", perplexity=perplexity)
