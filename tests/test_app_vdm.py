"""The VDM tab's API through gradio_client against the launched app: every vdm_* endpoint (shapes,
determinism with a seed, clear errors for bad arguments), on a tiny untrained VDM. The reverse
run lives in the session: one Client is one session, so each test opens its own."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from app_env import build_pretrained, close_app, launch_app
from test_app_api import array, frames_of, gallery, plot_json, png

pytest.importorskip("gradio_client")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from ui.common import PIXEL  # noqa: E402

REQUIRED = ["vdm_forward", "vdm_step", "vdm_run", "vdm_interpolate", "vdm_reset", "vdm_show",
            "vdm_rewind", "vdm_branch", "vdm_denoise", "vdm_loss", "vdm_dissolve", "vdm_curves"]
DS = "mnist"
PANEL_PIXEL = PIXEL - 2                      # vdm_reverse composes the step panel at this scale


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    yield url, root
    close_app(app)


def session(served) -> Client:
    """A new Client: a new browser tab, a session of its own."""
    return Client(served[0], verbose=False)


def schedule_of(root, name: str):
    from explorer.checkpoint import load_checkpoint
    from explorer.schedules import make_schedule
    if name == "learned":
        return load_checkpoint(root / DS / "vdm")[0].schedule
    return make_schedule(name, 1000)


def panel_frames(path) -> list[np.ndarray]:
    """The four 28x28 frames of a step panel (x_t | eps_hat | x0_hat | x_t_prev)."""
    image = png(path)
    white = np.full((28, 28), 255, np.uint8)
    from ui.common import compose
    probe = compose([[white] * 4], PANEL_PIXEL, ["a", "b", "c", "d"], font_size=20) == 255
    assert image.shape == probe.shape
    starts = [i for i in np.flatnonzero(probe.any(0)) if i == 0 or not probe.any(0)[i - 1]]
    y = int(np.flatnonzero(probe.any(1))[0])
    return [image[y:y + 28 * PANEL_PIXEL:PANEL_PIXEL, x:x + 28 * PANEL_PIXEL:PANEL_PIXEL]
            for x in starts]


def streaming_run(client):
    """Start the session's run streaming (/vdm_run) and return its job once a frame arrived."""
    job = client.submit(api_name="/vdm_run")
    while not job.outputs():
        job.status()
        threading.Event().wait(0.05)
    return job


def test_every_required_api_name_is_public(served):
    names = session(served).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert not [n for n in REQUIRED if f"/{n}" not in names]


# ---------------------------------------------------------------- forward process

@pytest.mark.parametrize("name", ["cosine", "linear", "learned"])
def test_vdm_forward_is_the_closed_form_q_xt_given_x0(served, name):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: t = 0 gives the image back, the numbers are
    the schedule's, and the same seed gives the same noise."""
    client, (url, root) = session(served), served
    images, _ = gallery(root)
    s = schedule_of(root, name)
    clean, _, info0 = client.predict(DS, 4, None, name, 3, 0, api_name="/vdm_forward")
    assert np.array_equal(frames_of(clean, 1, PIXEL)[0][0], images[4])
    assert info0["alpha_bar"] == 1.0
    image, hist, info = client.predict(DS, 4, None, name, 3, 600, api_name="/vdm_forward")
    assert info["alpha_bar"] == pytest.approx(float(s.alpha_bar[600]), rel=1e-9)
    assert info["log_snr"] == pytest.approx(float(s.log_snr[600]), rel=1e-9)
    assert info["snr"] == pytest.approx(math.exp(info["log_snr"]), rel=1e-9)
    bars = plot_json(hist)["data"][0]
    assert sum(bars["y"]) * 0.2 == pytest.approx(1.0, abs=0.01)      # a density, bins of 0.2
    again = client.predict(DS, 4, None, name, 3, 600, api_name="/vdm_forward")
    other = client.predict(DS, 4, None, name, 4, 600, api_name="/vdm_forward")
    assert np.array_equal(png(again[0]), png(image)) and again[2] == info
    assert not np.array_equal(png(other[0]), png(image))


def test_the_scrub_picture_names_its_t_and_the_page_data_rebuilds_it(served):
    """The page paints the scrub itself from `scrub_data` (ui/scrub_paint.py): x_0, eps and the
    schedule's roots rebuild the server's own picture exactly, mixed in float32 as numpy does;
    the server's PNG is named after its t, so the page can tell a late reply from a current one."""
    import json
    from pathlib import Path

    from ui import vdm_views as views
    from ui.common import compose, frame_gap

    client, (_, root) = session(served), served
    image = client.predict(DS, 4, None, "learned", 3, 600, api_name="/vdm_forward")[0]
    assert Path(image).name.startswith("x_t-0600-")
    state = views.prepare_scrub(DS, 4, None, "learned", 3)
    data = json.loads(views.scrub_data(state))
    assert data["gap"] == frame_gap(PIXEL) and data["bins"] == [-4.0, 4.0, 40]
    s = schedule_of(root, "learned")
    assert data["a"] == s.sqrt_alpha_bar.tolist() and len(data["b"]) == s.T + 1
    x0, eps = (np.array(data[k], np.float32).reshape(28, 28) for k in ("x0", "eps"))
    for t in (0, 600, 1000):
        x_t = np.float32(data["a"][t]) * x0 + np.float32(data["b"][t]) * eps
        pixels = np.round((np.clip(x_t, -1, 1) + 1) * np.float32(127.5)).astype(np.uint8)
        served_png = png(client.predict(DS, 4, None, "learned", 3, t, api_name="/vdm_forward")[0])
        assert np.array_equal(compose([[pixels]], PIXEL), served_png)
    assert views.scrub_data(None) == ""


def test_vdm_forward_at_T_is_standard_noise(served):
    """At t = T the pixels of x_t are close to N(0, 1) (abar_T is tiny): mean and spread agree
    with 784 standard normal draws to within 5 standard errors."""
    client = session(served)
    stats = [client.predict(DS, i, None, "cosine", i, 1000, api_name="/vdm_forward")[2]
             for i in range(0, 50, 10)]
    for s in stats:
        assert abs(s["mean"]) < 5 / 28 and abs(s["std"] - 1) < 5 * math.sqrt(0.5 / 784)


@pytest.mark.parametrize("args, message", [
    ((DS, 0, None, "cosine", 0, 1001), "greater than maximum"),
    ((DS, 0, None, "sigmoid", 0, 10), "not in the list of choices"),
    ((DS, 5000, None, "cosine", 0, 10), "out of range"),
    ((DS, None, None, "cosine", 0, 10), "choose an image"),
])
def test_vdm_forward_bad_arguments(served, args, message):
    with pytest.raises(AppError, match=message):
        session(served).predict(*args, api_name="/vdm_forward")


def test_vdm_curves_cursor_moves(served):
    client = session(served)
    a, b = (plot_json(client.predict(DS, t, api_name="/vdm_curves")) for t in (100, 700))
    assert {s["x0"] for s in a["layout"]["shapes"]} == {100}
    assert {s["x0"] for s in b["layout"]["shapes"]} == {700}
    assert {tr["name"] for tr in a["data"]} == {"learned", "linear", "cosine"}


# ---------------------------------------------------------------- the reverse run

def _run(client, sampler="ddpm", steps=12, eta=0.0, seed=0):
    return client.predict(DS, sampler, steps, eta, seed, api_name="/vdm_reset")


def test_vdm_step_by_step_run_shapes_and_numbers(served):
    client = session(served)
    panel, film, text, info, _ = _run(client, steps=12)
    assert info["taken"] == 0 and info["t"] == 1000 and "0 taken" in text
    for k in range(1, 4):
        panel, film, text, info, slider = client.predict(api_name="/vdm_step")
        assert info["taken"] == info["shown"] == k and slider["maximum"] == k
    x_t, eps, x0, x_prev = panel_frames(panel)
    assert all(f.shape == (28, 28) for f in (x_t, eps, x0, x_prev))
    job = client.submit(api_name="/vdm_run")
    job.result()
    last = job.outputs()[-1]
    assert last[3]["taken"] == 12 and last[3]["done"] and last[3]["t"] == 0
    with pytest.raises(AppError, match="greater than maximum value 12"):
        client.predict(13, api_name="/vdm_show")


def test_vdm_spacing_picks_the_steps_the_run_visits(served):
    """Karras spacing (the default) and even spacing visit the timesteps `spaced_timesteps` gives
    on the model's learned schedule, and the step captions name them."""
    from explorer.samplers import spaced_timesteps
    client, (_, root) = session(served), served
    schedule = schedule_of(root, "learned")
    default = _run(client, sampler="ddim", steps=10)[3]
    even = client.predict(DS, "ddim", 10, 0.0, 0, "linspace", api_name="/vdm_reset")[3]
    karras = client.predict(DS, "ddim", 10, 0.0, 0, "karras", api_name="/vdm_reset")[3]
    assert default["timestep_spacing"] == "karras" and default["timesteps"] == karras["timesteps"]
    assert even["timesteps"] == list(spaced_timesteps(schedule, 10))
    assert karras["timesteps"] == list(spaced_timesteps(schedule, 10, spacing="karras"))
    assert karras["timesteps"] != even["timesteps"]
    panel, _, text, info, _ = client.predict(api_name="/vdm_step")
    assert info["t"] == karras["timesteps"][1] and f"t = {info['t']}" in text
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(DS, "ddim", 10, 0.0, 0, "leading", api_name="/vdm_reset")


def test_vdm_steps_plot_puts_the_run_on_the_log_snr_curve(served):
    """The plot below the run: the schedule's log-SNR(t), the timesteps the run has been at
    (filled), those ahead (hollow) and the current one (starred), all on the curve, after the
    steps the page shows; at the end the run is at x_0, off the curve."""
    client, (_, root) = session(served), served
    log_snr = schedule_of(root, "learned").log_snr.numpy()
    _run(client, sampler="ddim", steps=6)
    for _ in range(2):
        info = client.predict(api_name="/vdm_step")[3]
    states = info["timesteps"]
    fig = plot_json(client.predict(api_name="/vdm_steps_plot"))
    curve, ahead, been, now = fig["data"]
    assert np.array_equal(array(curve["x"]), np.arange(1, 1001))      # log SNR(0) is infinite
    assert np.allclose(array(curve["y"]), log_snr[1:], atol=1e-5)
    assert been["x"] == states[:3] and ahead["x"] == states[3:] and now["x"] == [info["t"]]
    assert info["t"] == states[2]
    for trace in (ahead, been, now):
        assert np.allclose(trace["y"], log_snr[trace["x"]], atol=1e-3)
    title = fig["layout"]["title"]["text"]
    assert "6 steps" in title and f"2 taken, now t = {info['t']}" in title
    client.predict(1, api_name="/vdm_show")                             # the slider at step 1
    fig = plot_json(client.predict(api_name="/vdm_steps_plot"))
    assert fig["data"][2]["x"] == states[:2] and fig["data"][3]["x"] == [states[1]]
    client.submit(api_name="/vdm_run").result()                        # every step taken
    fig = plot_json(client.predict(api_name="/vdm_steps_plot"))
    assert fig["data"][2]["x"] == states and fig["data"][1]["x"] == fig["data"][3]["x"] == []
    assert "6 taken, now t = 0, x_0 reached" in fig["layout"]["title"]["text"]
    assert session(served).predict(api_name="/vdm_steps_plot") is None  # a session with no run


def test_vdm_runs_are_seeded_and_sessions_apart(served):
    """Same seed, same frames; another seed, other frames; two sessions stepping at once never
    see each other's run."""
    results = {}

    def drive(name, seed):
        client = session(served)
        _run(client, seed=seed)
        results[name] = [png(client.predict(api_name="/vdm_step")[0]) for _ in range(4)]
    threads = [threading.Thread(target=drive, args=(n, s)) for n, s in
               (("a", 1), ("b", 2), ("c", 1))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(np.array_equal(x, y) for x, y in zip(results["a"], results["c"]))
    assert not any(np.array_equal(x, y) for x, y in zip(results["a"], results["b"]))


def test_vdm_rewind_replays_and_branch_diverges(served):
    client = session(served)
    _run(client, steps=10, seed=0)
    job = client.submit(api_name="/vdm_run")
    job.result()
    shown = png(client.predict(6, api_name="/vdm_show")[0])
    out = client.predict(5, api_name="/vdm_rewind")
    assert out[3]["taken"] == 5
    replay = client.predict(api_name="/vdm_step")[0]
    assert np.array_equal(png(replay), shown)               # same seed: step 6 again
    branched = client.predict(5, 77, api_name="/vdm_branch")
    assert branched[3]["taken"] == 6 and branched[3]["branches"] == [[0, 0], [5, 77]]
    assert not np.array_equal(panel_frames(branched[0])[3], panel_frames(replay)[3])
    assert np.array_equal(panel_frames(branched[0])[0], panel_frames(replay)[0])   # same x_t


def test_vdm_stop_keeps_the_steps_taken(served):
    client = session(served)
    _run(client, sampler="ddpm", steps=1000)
    job = streaming_run(client)
    job.cancel()
    threading.Event().wait(1.0)
    info = client.predict(0, api_name="/vdm_show")[3]
    assert 0 < info["taken"] < 1000                          # stopped part way, steps kept
    after = client.predict(api_name="/vdm_step")[3]
    assert after["taken"] >= info["taken"] + 1


def test_vdm_reconfigure_keeps_the_run_when_nothing_changed(served):
    """A control's release with the run's own settings (its number box losing focus on the way
    to Step) keeps the steps taken; another setting starts a new run."""
    client = session(served)
    _run(client, steps=12, seed=3)
    for _ in range(2):
        client.predict(api_name="/vdm_step")
    client.predict(DS, "ddpm", 12, 0.0, 3, "karras", api_name="/vdm_reconfigure")
    assert client.predict(api_name="/vdm_step")[3]["taken"] == 3
    out = client.predict(DS, "ddpm", 20, 0.0, 3, "karras", api_name="/vdm_reconfigure")
    assert out[3]["taken"] == 0 and out[3]["steps"] == 20
    client.predict(api_name="/vdm_step")
    out = client.predict(DS, "ddpm", 20, 0.0, 3, "linspace", api_name="/vdm_reconfigure")
    assert out[3]["taken"] == 0 and out[3]["timestep_spacing"] == "linspace"


@pytest.mark.parametrize("args, message", [
    ((DS, "ddpm", 0, 0.0, 0), "less than minimum"),
    ((DS, "ddpm", 10, 1.5, 0), "greater than maximum"),
    ((DS, "euler", 10, 0.0, 0), "not in the list of choices"),
    ((DS, "ddim", 10, 0.0, -3), "less than minimum"),
])
def test_vdm_reset_bad_arguments(served, args, message):
    with pytest.raises(AppError, match=message):
        session(served).predict(*args, api_name="/vdm_reset")


def test_vdm_step_before_a_run_says_press_reset(served):
    with pytest.raises(AppError, match="press Reset"):
        session(served).predict(api_name="/vdm_step")


# ---------------------------------------------------------------- the other views

def test_vdm_denoise_shapes_and_seed(served):
    client, (_, root) = session(served), served
    images, _ = gallery(root)
    grid, info = client.predict(DS, 2, None, 300, 10, "ddpm", 5, api_name="/vdm_denoise")
    rows = frames_of(grid, 3, col_labels=["x_0", f"x_t, t = 300, abar = {info['alpha_bar']:.2f}",
                                          "denoised"],
                     row_labels=[f"eps {i}" for i in range(1, 5)], rows=4)
    assert all(np.array_equal(r[0], images[2]) for r in rows) and len(info["psnr_db"]) == 4
    again = client.predict(DS, 2, None, 300, 10, "ddpm", 5, api_name="/vdm_denoise")
    assert np.array_equal(png(again[0]), png(grid))
    assert info["steps"] == 10
    with pytest.raises(AppError, match="greater than maximum"):
        client.predict(DS, 2, None, 5000, 10, "ddim", 5, api_name="/vdm_denoise")


def test_vdm_interpolate_frames_and_ends(served):
    client, (_, root) = session(served), served
    images, _ = gallery(root)
    slerp, fade, info, _ = client.predict(DS, 0, None, 150, None, 5, 10,
                                          api_name="/vdm_interpolate")    # _: the GIF
    labels = [f"{w:.2f}" for w in np.linspace(0, 1, 5)]
    frames = frames_of(slerp, 5, col_labels=labels, row_labels=["slerp x_T"])[0]
    pixels = frames_of(fade, 5, col_labels=labels, row_labels=["pixels"])[0]
    assert len(frames) == 5 and np.array_equal(pixels[0], images[0])
    assert np.array_equal(pixels[-1], images[150]) and len(info["roundtrip_psnr_db"]) == 2
    again = client.predict(DS, 0, None, 150, None, 5, 10, api_name="/vdm_interpolate")
    assert np.array_equal(png(again[0]), png(slerp))
    with pytest.raises(AppError, match="less than minimum"):
        client.predict(DS, 0, None, 150, None, 1, 10, api_name="/vdm_interpolate")


def test_vdm_loss_terms_add_up(served):
    """The terms sum to the total, bits/dim = nats / (784 ln 2), and with every t the diffusion
    term is the plain sum of the L_t plotted."""
    client = session(served)
    plot, table, info = client.predict(DS, 1, None, 999, 0, api_name="/vdm_loss")
    nats = info["nats"]
    assert info["exact"] and info["points"] == 999 and len(info["L_t"]) == 999
    assert nats["total"] == pytest.approx(nats["reconstruction"] + nats["prior"]
                                          + nats["diffusion"], rel=1e-9)
    assert nats["diffusion"] == pytest.approx(sum(info["L_t"]), rel=1e-6)
    assert info["bits_per_dim"]["total"] == pytest.approx(nats["total"] / (784 * math.log(2)))
    assert all(v >= 0 for v in info["L_t"]) and "bits/dim" in table
    y = array(plot_json(plot)["data"][0]["y"])
    assert len(y) == 999
    coarse = client.predict(DS, 1, None, 50, 0, api_name="/vdm_loss")[2]
    assert not coarse["exact"] and coarse["points"] == 50
    assert coarse["nats"]["diffusion"] == pytest.approx(999 * np.mean(coarse["L_t"]), rel=1e-6)


def test_vdm_dissolve_maps_the_gallery_onto_fixed_axes(served):
    client, (_, root) = session(served), served
    _, labels = gallery(root)
    start = plot_json(client.predict(DS, 0, "cosine", api_name="/vdm_dissolve")[0])   # (map, CSV)
    end = plot_json(client.predict(DS, 1000, "cosine", api_name="/vdm_dissolve")[0])
    index = np.concatenate([array(t["customdata"]) for t in start["data"]])
    assert sorted(index.tolist()) == list(range(len(labels)))
    assert start["layout"]["xaxis"]["range"] == end["layout"]["xaxis"]["range"]

    def spread(figure):                                    # between-class / total variance
        xy = [np.stack([array(t["x"]), array(t["y"])], 1) for t in figure["data"]]
        every = np.concatenate(xy)
        between = sum(len(p) * ((p.mean(0) - every.mean(0)) ** 2).sum() for p in xy)
        return between / (len(every) * every.var(0).sum())
    assert spread(start) > 0.3 > 0.05 > spread(end)       # classes apart at 0, mixed at T


def test_vdm_stop_ends_the_run_after_the_step_under_way(served):
    """The Stop endpoint (what the button sends beside cancelling the stream): no step is taken
    after it, and the run can go on with Step."""
    client = session(served)
    _run(client, sampler="ddpm", steps=1000)
    job = streaming_run(client)
    client.predict(api_name="/vdm_stop")
    job.cancel()
    threading.Event().wait(0.5)
    first = client.predict(0, api_name="/vdm_show")[3]["taken"]
    threading.Event().wait(1.5)
    assert client.predict(0, api_name="/vdm_show")[3]["taken"] == first and 0 < first < 1000
    assert client.predict(api_name="/vdm_step")[3]["taken"] == first + 1
