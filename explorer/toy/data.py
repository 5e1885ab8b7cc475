"""Toy 2-D data sets for the diffusion playground (numpy only).

Each named set is a fixed distribution, mapped by a fixed per-coordinate affine map to mean ~0 and
standard deviation ~1 per coordinate (as tiny-diffusion and Diffusion Explorer scale theirs), so a
set looks the same at every size and seed and lies well inside the plot box [-BOX, BOX]^2. The
map's constants are the clean shape's population moments (closed form, or a fine quadrature for the
spiral), not the moments of one draw; noise is added after it, isotropic, so that
Var = (1 - noise^2) + noise^2 = 1 per coordinate.
"""

from __future__ import annotations

import math

import numpy as np

from explorer.config import check_choice
from explorer.validate import check_int, check_seed

SETS: tuple[str, ...] = ("moons", "spiral", "rings", "gaussians", "checkerboard")
SET_NAMES: dict[str, str] = {"moons": "two moons", "spiral": "spiral", "rings": "rings",
                             "gaussians": "8 Gaussians", "checkerboard": "checkerboard"}
MIN_POINTS = 2
MAX_POINTS = 5000      # largest set (named or drawn)
BOX = 3.0              # every set lies inside [-BOX, BOX]^2 (the playground's plot extent)

# isotropic noise (final units) on the sets that are curves, so they are not degenerate
_NOISE = {"moons": 0.06, "spiral": 0.05, "rings": 0.04}
_BLOB_STD = 0.12                                   # std of each of the 8 Gaussians
_RING_RADII = np.array([1.0, 2.0, 3.0]) / 3.0      # three rings, mass proportional to radius
_SPIRAL_TURNS = (0.5 * math.pi, 4.0 * math.pi)     # spiral angle range; density of theta ∝ theta


def _spiral_moments() -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance per coordinate of the clean spiral (theta cos theta, theta sin theta),
    theta with density ∝ theta on _SPIRAL_TURNS (~uniform along the arc): midpoint quadrature."""
    lo, hi = _SPIRAL_TURNS
    edges = np.linspace(lo, hi, 200_001)
    theta = 0.5 * (edges[:-1] + edges[1:])
    w = theta / theta.sum()
    xy = np.stack([theta * np.cos(theta), theta * np.sin(theta)], axis=1)
    mean = w @ xy
    return mean, w @ (xy - mean) ** 2


# (mean, variance) per coordinate of each clean shape before scaling
_MOONS_MEAN_Y = 0.25                               # (2/pi + 1/2 - 2/pi) / 2
_CLEAN_MOMENTS = {
    # outer (cos, sin), inner (1 - cos, 1/2 - sin), theta ~ U[0, pi], half each
    "moons": (np.array([0.5, _MOONS_MEAN_Y]),
              np.array([1.0 - 0.25,
                        0.25 + 0.5 * (0.75 - 2.0 / math.pi) - _MOONS_MEAN_Y ** 2])),
    "spiral": _spiral_moments(),
    # E r^2 / 2 per coordinate, r = radius of the ring drawn
    "rings": (np.zeros(2), np.full(2, 0.5 * float(_RING_RADII ** 2 @ (_RING_RADII / _RING_RADII.sum())))),
    # 8 centres on the unit circle: E cos^2 = 1/2
    "gaussians": (np.zeros(2), np.full(2, 0.5)),
    # uniform on the 8 dark squares of a 4 x 4 board over [-2, 2]^2: each coordinate U(-2, 2)
    "checkerboard": (np.zeros(2), np.full(2, 16.0 / 12.0)),
}


def _clean(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points of the clean shape `name`, in its own units, (n, 2) float64."""
    if name == "moons":
        theta = rng.uniform(0.0, math.pi, n)
        outer = np.arange(n) < (n + 1) // 2
        x = np.where(outer, np.cos(theta), 1.0 - np.cos(theta))
        y = np.where(outer, np.sin(theta), 0.5 - np.sin(theta))
        return np.stack([x, y], axis=1)
    if name == "spiral":
        lo, hi = _SPIRAL_TURNS
        theta = np.sqrt(lo ** 2 + rng.uniform(0.0, 1.0, n) * (hi ** 2 - lo ** 2))  # density ∝ theta
        return np.stack([theta * np.cos(theta), theta * np.sin(theta)], axis=1)
    if name == "rings":
        radius = rng.choice(_RING_RADII, size=n, p=_RING_RADII / _RING_RADII.sum())
        angle = rng.uniform(0.0, 2.0 * math.pi, n)
        return radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    if name == "gaussians":
        angle = 2.0 * math.pi * rng.integers(0, 8, n) / 8.0
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        # radius R with R^2 / 2 + blob^2 = 1: unit variance per coordinate after the blobs
        radius = math.sqrt(2.0 * (1.0 - _BLOB_STD ** 2))
        return centres + (_BLOB_STD / radius) * rng.standard_normal((n, 2))
    # checkerboard (FFJORD's): column from x, then one of the two dark squares in that column
    x = rng.uniform(-2.0, 2.0, n)
    y = rng.uniform(0.0, 1.0, n) - 2.0 * rng.integers(0, 2, n) + np.floor(x) % 2
    return np.stack([x, y], axis=1)


def make_set(name: str, n: int, seed: int) -> np.ndarray:
    """n points of the named set (one of SETS), (n, 2) float32, mean ~0 and std ~1 per coordinate,
    inside [-BOX, BOX]^2. The same (name, n, seed) always gives the same points."""
    check_choice("data set", name, SETS)
    n = check_int("n", n, MIN_POINTS, MAX_POINTS)
    rng = np.random.default_rng(check_seed(seed))
    points = _clean(name, n, rng)
    mean, var = _CLEAN_MOMENTS[name]
    if name == "gaussians":       # the blobs are part of the shape: scale by the centres' radius
        return (points * math.sqrt(2.0 * (1.0 - _BLOB_STD ** 2))).astype(np.float32)
    noise = _NOISE.get(name, 0.0)
    points = (points - mean) * (math.sqrt(1.0 - noise ** 2) / np.sqrt(var))
    if noise:
        points = points + noise * rng.standard_normal((n, 2))
    return points.astype(np.float32)


def check_points(points) -> np.ndarray:
    """Points a user drew or clicked: a list (or array) of [x, y] pairs -> (n, 2) float32, with
    MIN_POINTS <= n <= MAX_POINTS, every coordinate finite and inside [-BOX, BOX]. Anything else
    raises a ValueError that says what is wrong."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("points must be a list of [x, y] pairs of numbers") from None
    if array.size == 0:
        raise ValueError(f"draw at least {MIN_POINTS} points: got none")
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must be a list of [x, y] pairs, got an array of shape "
                         f"{array.shape}")
    n = array.shape[0]
    if n < MIN_POINTS:
        raise ValueError(f"draw at least {MIN_POINTS} points: got {n}")
    if n > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points, got {n}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"point {k} is not finite: ({array[k, 0]}, {array[k, 1]})")
    outside = (np.abs(array) > BOX).any(axis=1)
    if outside.any():
        k = int(np.argmax(outside))
        raise ValueError(f"point {k} ({array[k, 0]:g}, {array[k, 1]:g}) lies outside the box "
                         f"[-{BOX:g}, {BOX:g}]^2")
    return array.astype(np.float32)
