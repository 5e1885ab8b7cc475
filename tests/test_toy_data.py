"""The playground's 2-D data sets and the check on drawn points (explorer.toy.data)."""

import math

import numpy as np
import pytest

from explorer.toy.data import BOX, MAX_POINTS, MIN_POINTS, SET_NAMES, SETS, check_points, make_set


def test_every_set_has_a_display_name():
    assert set(SET_NAMES) == set(SETS)


@pytest.mark.parametrize("name", SETS)
def test_size_dtype_and_seed(name):
    for n in (MIN_POINTS, 3, 257):
        points = make_set(name, n, seed=5)
        assert points.shape == (n, 2) and points.dtype == np.float32
    assert np.array_equal(make_set(name, 300, 7), make_set(name, 300, 7))
    assert not np.allclose(make_set(name, 300, 7), make_set(name, 300, 8))


@pytest.mark.parametrize("name", SETS)
def test_unit_scale_inside_the_box(name):
    """Mean ~0 and std ~1 per coordinate (population moments of the fixed map; the sample
    std of 5000 points strays by ~1%), and every point well inside the box, over a few seeds."""
    for seed in range(3):
        points = make_set(name, MAX_POINTS, seed).astype(np.float64)
        assert np.all(np.abs(points.mean(axis=0)) < 0.1)
        assert np.all(np.abs(points.std(axis=0) - 1.0) < 0.06)
        assert np.abs(points).max() < 0.85 * BOX


def test_sets_are_not_degenerate():
    """Noise on the curves: no two points coincide, and the spread is two-dimensional."""
    for name in SETS:
        points = make_set(name, 1000, 0).astype(np.float64)
        assert len(np.unique(points, axis=0)) == 1000
        assert np.linalg.eigvalsh(np.cov(points.T)).min() > 0.3


def test_eight_gaussians_are_eight_blobs_on_a_circle():
    points = make_set("gaussians", 4000, 1).astype(np.float64)
    angle = np.mod(np.arctan2(points[:, 1], points[:, 0]) + math.pi / 8, 2 * math.pi)
    blob = (angle // (math.pi / 4)).astype(int)
    counts = np.bincount(blob, minlength=8)
    assert len(counts) == 8 and counts.min() > 400            # 500 expected each
    radius = np.linalg.norm(points, axis=1)
    assert np.std(radius) < 0.2 and abs(np.mean(radius) - 1.4) < 0.1


def test_checkerboard_fills_alternate_squares():
    points = make_set("checkerboard", 4000, 2).astype(np.float64)
    cells = np.floor(points / (math.sqrt(3) / 2)).astype(int)  # 4 x 4 squares of side sqrt(3)/2
    parity = (cells[:, 0] + cells[:, 1]) % 2
    assert len(set(parity.tolist())) == 1


def test_bad_names_and_sizes():
    with pytest.raises(ValueError, match="valid: 'moons'"):
        make_set("swiss roll", 100, 0)
    for n in (0, 1, MAX_POINTS + 1, 2.5, "many"):
        with pytest.raises(ValueError, match=f"n must be a whole number in {MIN_POINTS}..{MAX_POINTS}"):
            make_set("moons", n, 0)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        make_set("moons", 10, -1)


def test_check_points_accepts_pairs():
    out = check_points([[0, 0], [1.5, -2.0], [BOX, -BOX]])
    assert out.dtype == np.float32 and out.shape == (3, 2)
    assert np.array_equal(out, np.array([[0, 0], [1.5, -2.0], [BOX, -BOX]], dtype=np.float32))
    assert check_points(np.zeros((MAX_POINTS, 2))).shape == (MAX_POINTS, 2)


@pytest.mark.parametrize("points, message", [
    ([], "draw at least 2 points: got none"),
    ([[0.5, 0.5]], "draw at least 2 points: got 1"),
    ([[0, 0], [math.nan, 1]], "point 1 is not finite"),
    ([[math.inf, 0], [0, 0]], "point 0 is not finite"),
    (np.zeros((MAX_POINTS + 1, 2)), f"at most {MAX_POINTS} points, got {MAX_POINTS + 1}"),
    ([[0, 0], [3.5, 0]], r"point 1 \(3.5, 0\) lies outside the box \[-3, 3\]\^2"),
    ([[0, 0], [0, -1e9]], "point 1 .* lies outside the box"),
    ([[0, 1, 2], [3, 4, 5]], "pairs"),
    ([0.5, 0.5], "pairs"),
    ([[0, 0], [1]], "pairs"),
    ("two points", "pairs"),
    ([["a", "b"], [0, 0]], "pairs"),
    (None, "pairs"),
])
def test_check_points_messages(points, message):
    with pytest.raises(ValueError, match=message):
        check_points(points)
