"""Frechet distance against closed forms, and the judge end to end on the MNIST subset."""

import json

import numpy as np
import pytest

from explorer import evaluate
from explorer.checkpoint import save_checkpoint
from explorer.data import load_dataset
from explorer.frechet import frechet_distance, gaussian_stats, reference_images, train_judge


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    mu, cov = gaussian_stats(a)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)


def test_commuting_covariances_match_the_closed_form():
    """For diagonal covariances FD = ||mu_a - mu_b||^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu_a, np.diag(a), mu_b, np.diag(b)) == pytest.approx(expected)


def test_rotation_invariance_with_full_covariances():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(4, 4))
    cov_a, cov_b = m @ m.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0])
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    d = frechet_distance(np.zeros(4), cov_a, np.ones(4), cov_b)
    rotated = frechet_distance(np.zeros(4), q @ cov_a @ q.T, q @ np.ones(4), q @ cov_b @ q.T)
    assert d == pytest.approx(rotated, rel=1e-8)


def test_judge_scores_real_images_closer_than_noise(tmp_path, monkeypatch, capsys):
    judge, meta = train_judge("mnist", epochs=2, limit=2000)
    assert meta["test_accuracy"] > 0.5 and meta["floor"]["train_vs_test"] >= 0
    monkeypatch.setenv("EXPLORER_PRETRAINED_DIR", str(tmp_path))
    save_checkpoint(judge, tmp_path / "mnist" / "judge", meta)
    train = load_dataset("mnist", "train").images                # stored sorted by class
    real = train[np.random.default_rng(0).choice(len(train), 500, replace=False)]
    noise = np.random.default_rng(0).integers(0, 256, (500, 28, 28), dtype=np.uint8)
    scores = {}
    for name, images in (("real", real), ("noise", noise)):
        np.save(tmp_path / f"{name}.npy", images)
        evaluate.main(["--samples", str(tmp_path / f"{name}.npy"), "--dataset", "mnist", "--json"])
        scores[name] = json.loads(capsys.readouterr().out)["frechet_distance"]
    assert scores["real"] < scores["noise"] / 10


def test_samples_of_the_wrong_shape_are_refused(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 32, 32), dtype=np.uint8))
    with pytest.raises(SystemExit, match="uint8"):
        evaluate.score_samples(str(tmp_path / "bad.npy"), "mnist")


def test_the_reference_images_are_a_fair_draw_of_a_class_sorted_split():
    """A split stored sorted by class (as the MNIST subset is): the first half holds half the
    classes, the reference draw of the same size holds every class, about equally often."""
    labels = np.repeat(np.arange(10), 100)                      # 1,000 "images", sorted by class
    images = labels[:, None, None].astype(np.uint8) * np.ones((1, 28, 28), np.uint8)
    assert len(np.unique(images[:500, 0, 0])) == 5
    counts = np.bincount(reference_images(images, 500)[:, 0, 0], minlength=10)
    # each class: hypergeometric, mean 50, sd about 4.7; 6 sd either side
    assert counts.sum() == 500 and counts.min() > 50 - 28 and counts.max() < 50 + 28
    assert np.array_equal(reference_images(images, 500), reference_images(images, 500))
    assert reference_images(images, 1000) is images and reference_images(images, 5000) is images
