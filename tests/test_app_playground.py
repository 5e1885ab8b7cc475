"""The 2-D playground through its public API (gradio_client, one Client a session) and its
training labs directly: training streams its progress and stops where asked, the field and the
trajectories are the backend's (the exact field checked against explorer.toy.exact computed
here), the downloads rebuild the model, bad input gets a clear message, and training is
bounded in concurrent labs."""

from __future__ import annotations

import csv
import json
import time
import zipfile

import numpy as np
import pytest
import torch
from app_env import build_pretrained, close_app, launch_app
from PIL import Image

pytest.importorskip("gradio_client")

from gradio_client import Client  # noqa: E402

from bench.client import gradio_client  # noqa: E402

from explorer.schedules import linear_schedule  # noqa: E402
from explorer.toy.data import make_set  # noqa: E402
from explorer.toy.exact import ExactDenoiser, grid_points  # noqa: E402
from explorer.toy.export import load_toy  # noqa: E402

SMALL = ("moons", 400, 0, "linear", 64, 2, 0.003, 300, 256, "")      # a quick model


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    yield url
    close_app(app)


@pytest.fixture
def client(served) -> Client:
    return gradio_client(served)


def setup(client, *settings):
    return client.predict(*(settings or SMALL), api_name="/playground_setup")


@pytest.mark.slow
def test_train_field_trajectories_and_downloads(client, tmp_path):
    summary = setup(client)
    assert summary["status"] == "untrained" and summary["points"] == 400
    messages = list(client.submit(api_name="/playground_train"))
    iterations = [m["iteration"] for m in messages]
    assert iterations == sorted(iterations) and iterations[-1] == 300
    last = messages[-1]
    assert last["status"] == "done"
    floor = last["exact_diffusion_floor_nats"]
    assert floor > 0 and np.isfinite(list(last["loss_nats"].values())).all()
    # the page's numbers: the -ELBO's terms sum to its total
    terms = last["loss_nats"]
    assert terms["total"] == pytest.approx(terms["reconstruction"] + terms["prior"]
                                           + terms["diffusion"], abs=1e-3)

    # the exact field is explorer.toy.exact's for these points and this schedule
    field = client.predict(300, 9, "eps", api_name="/playground_field")
    points = make_set("moons", 400, 0)
    x = grid_points(9)
    exact = ExactDenoiser(points, linear_schedule(1000))(x, torch.full((81,), 300))
    assert np.allclose(field["exact"], exact.numpy(), atol=1e-4)
    assert np.allclose(field["points"], x.numpy(), atol=1e-4)
    gap = np.linalg.norm(np.subtract(field["learned"], field["exact"]), axis=1)
    assert np.allclose(field["gap"], gap, atol=1e-3)
    assert field["mse_at_t"]["exact"] <= field["mse_at_t"]["learned"] + 0.05
    score = client.predict(300, 9, "score", api_name="/playground_field")
    sigma = float(linear_schedule(1000).sqrt_one_minus_alpha_bar[300])
    assert np.allclose(score["exact"], -np.asarray(field["exact"]) / sigma, atol=1e-3)

    # trajectories: the exact denoiser puts every point back on a training point
    result, csv_path = client.predict(64, 100, 3, api_name="/playground_trajectories")
    distance = result["mean_distance_to_nearest_training_point"]
    assert distance["ddpm-exact"] < 0.02 and distance["ddim-exact"] < 0.05
    assert distance["ddpm-learned"] > distance["ddpm-exact"]
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 101 * 64
    final = np.array([[float(r["x"]), float(r["y"])] for r in rows
                      if r["run"] == "ddim-exact" and r["k"] == "100"])
    assert np.allclose(final, result["x_0"]["ddim-exact"], atol=1e-4)

    # downloads: the model rebuilds from its zip (same predictions), the GIF animates
    archive = client.predict(api_name="/playground_model")
    with zipfile.ZipFile(archive) as z:
        assert {"toy.safetensors", "toy.json", "training.json"} <= set(z.namelist())
        z.extractall(tmp_path)
    model, saved = load_toy(tmp_path)
    assert np.allclose(saved, points)
    learned = model.predict_noise(x, torch.full((81,), 300)).detach().numpy()
    assert np.allclose(learned, field["learned"], atol=1e-4)
    assert json.loads((tmp_path / "training.json").read_text())["iteration"] == 300
    gif = Image.open(client.predict(api_name="/playground_training_gif"))
    assert gif.n_frames > 2
    with open(client.predict(api_name="/playground_points_csv")) as f:
        kinds = [r["kind"] for r in csv.DictReader(f)]
    assert kinds.count("data") == 400 and len(kinds) > 400


def test_pause_keeps_the_model_and_train_goes_on(client):
    setup(client, "gaussians", 300, 1, "linear", 32, 2, 0.003, 20_000, 128, "")
    job = client.submit(api_name="/playground_train")
    time.sleep(2.0)
    paused = client.predict(api_name="/playground_pause")
    job.cancel()
    assert paused["status"] == "paused" and 0 < paused["iteration"] < 20_000
    time.sleep(0.5)
    again = client.predict(api_name="/playground_pause")
    assert again["iteration"] == paused["iteration"]          # nothing trains while paused
    stopped = client.predict(api_name="/playground_stop")
    assert stopped["status"] == "stopped"


@pytest.mark.parametrize("points, message", [
    ("[]", "at least 2"), ("[[0.5, 0.5]]", "at least 2"), ("abc", "not JSON"),
    ("[[0, 1], [NaN, 2]]", "finite"), ("[[0, 1], [9, 2]]", "box")])
def test_drawn_points_that_cannot_be_used_are_refused_clearly(client, points, message):
    with pytest.raises(Exception, match=message):
        setup(client, "drawn", 400, 0, "linear", 64, 2, 0.003, 300, 256, points)


def test_drawn_points_train(client):
    summary = setup(client, "drawn", 400, 0, "linear", 32, 1, 0.003, 100, 64,
                    "[[0, 0], [1, 1], [-1, 0.5]]")
    assert summary["points"] == 3 and summary["settings"]["data"] == "drawn"
    assert list(client.submit(api_name="/playground_train"))[-1]["iteration"] == 100


@pytest.mark.parametrize("index, value, name", [(1, 10**9, "size"), (6, 5.0, "lr"),
                                                (6, 0.0, "lr"), (7, 10**7, "iterations")])
def test_out_of_range_settings_name_the_setting(client, index, value, name):
    settings = list(SMALL)
    settings[index] = value
    with pytest.raises(Exception, match=name):
        setup(client, *settings)


def test_calls_before_a_playground_say_so(client):
    for api, args in (("/playground_field", (10, 9, "eps")), ("/playground_pause", ()),
                      ("/playground_model", ())):
        with pytest.raises(Exception, match="session"):
            client.predict(*args, api_name=api)


def test_training_is_bounded_in_concurrent_labs():
    from ui.playground import lab as labs
    made = [labs.new_lab(labs.Settings(data="rings", size=200, width=16, depth=1, steps=100_000,
                                       batch=64, seed=i)) for i in range(labs.TRAINING_AT_ONCE + 1)]
    try:
        for lab in made:
            labs.train(lab)
        deadline = time.monotonic() + 30
        while sum(lab.status == "training" for lab in made) < labs.TRAINING_AT_ONCE and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        statuses = sorted(lab.status for lab in made)
        assert statuses.count("training") == labs.TRAINING_AT_ONCE
        assert statuses.count("waiting") == 1
        first = next(lab for lab in made if lab.status == "training")
        labs.halt(first, "paused")
        waiting = next(lab for lab in made if lab.status == "waiting" or lab is not first)
        deadline = time.monotonic() + 30
        while waiting.status != "training" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting.status == "training"
    finally:
        for lab in made:
            labs.halt(lab, "stopped")
