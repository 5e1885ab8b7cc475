"""The VDM tab's API through gradio_client against the launched app: every vdm_* endpoint (shapes,
determinism with a seed, clear errors for bad arguments), on a tiny untrained VDM. The reverse
run lives in the session: one Client is one session, so each test opens its own."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from app_env import build_pretrained, close_app, launch_app
from test_app_api import array, frames_of, gallery, plot_json, png

pytest.importorskip("gradio_client")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from bench.client import gradio_client  # noqa: E402

from ui.common import PIXEL  # noqa: E402

REQUIRED = ["vdm_forward", "vdm_step", "vdm_run", "vdm_interpolate", "vdm_reset", "vdm_show",
            "vdm_rewind", "vdm_branch", "vdm_denoise", "vdm_loss", "vdm_dissolve", "vdm_curves"]
DS = "mnist"
PANEL_PIXEL = PIXEL - 2                      # ui/vdm/run.py composes the step panel at this scale


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    yield url, root
    close_app(app)


def session(served) -> Client:
    """A new Client: a new browser tab, a session of its own."""
    return gradio_client(served[0])


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
    client, (_, root) = session(served), served
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


def test_the_scrub_view_data_rebuilds_the_server_picture(served):
    """The page mixes the scrub itself from its view's data (ui/static/views/scrub.js): x_0,
    eps and the schedule's float32 roots, mixed in float32 as numpy does, give the server's own
    picture exactly at every t; the view carries the t a scene asks for."""
    import base64

    from ui.common import compose
    from ui.vdm import views

    client, (_, root) = session(served), served
    data = views.scrub_view_data(DS, 4, None, "learned", 3, scene_t=600)
    floats = lambda text: np.frombuffer(base64.b64decode(text), "<f4")
    s = schedule_of(root, "learned")
    a, b = floats(data["tables"]["learned"]["a"]), floats(data["tables"]["learned"]["b"])
    assert data["T"] == s.T and data["scene_t"] == 600 and set(data["tables"]) == {
        "learned", "linear", "cosine"}
    assert np.array_equal(a, s.sqrt_alpha_bar.numpy().astype(np.float32))
    x0, eps = (floats(data[k]).reshape(28, 28) for k in ("x0", "eps"))
    for t in (0, 600, 1000):
        x_t = a[t] * x0 + b[t] * eps                                      # float32
        pixels = np.round((np.clip(x_t, -1, 1) + 1) * np.float32(127.5)).astype(np.uint8)
        served_png = png(client.predict(DS, 4, None, "learned", 3, t, api_name="/vdm_forward")[0])
        assert np.array_equal(compose([[pixels]], PIXEL), served_png)


def test_vdm_forward_at_T_is_standard_noise(served):
    """At t = T the pixels of x_t are close to N(0, 1) (abar_T is tiny): mean and spread agree
    with 784 standard normal draws to within 5 standard errors."""
    client = session(served)
    stats = [client.predict(DS, i, None, "cosine", i, 1000, api_name="/vdm_forward")[2]
             for i in range(0, 50, 10)]
    for s in stats:
        assert abs(s["mean"]) < 5 / 28 and abs(s["std"] - 1) < 5 * math.sqrt(0.5 / 784)


@pytest.mark.parametrize("args, message", [
    ((DS, 0, None, "cosine", 0, 1001), r"t: 1001 is not valid; valid: a whole number in 0\.\.1000"),
    ((DS, 0, None, "sigmoid", 0, 10), "schedule: 'sigmoid' is not valid; valid: one of"),
    ((DS, 5000, None, "cosine", 0, 10), "index: 5000 is not valid"),
    ((DS, None, None, "cosine", 0, 10), "index and image are both empty"),
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
    with pytest.raises(AppError, match=r"shown: 13 is not valid; valid: a whole number in 0\.\.12"):
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
    with pytest.raises(AppError, match="spacing: 'leading' is not valid; valid: one of"):
        client.predict(DS, "ddim", 10, 0.0, 0, "leading", api_name="/vdm_reset")


def _u8(text: str) -> np.ndarray:
    import base64
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(28, 28)


def test_the_run_view_channel_carries_the_api_pictures_and_the_curve(served):
    """The page's run view is fed compact messages (ui/vdm/frames.py), moved through its own
    server functions (ui/vdm/live.py): a step's pictures are exactly the API's panel; the head
    has the run's timesteps on the learned schedule's log-SNR; a followed Run reaches x_0;
    rewind cuts the page's history, branch continues it with another seed."""
    import asyncio
    import base64

    from explorer.samplers import spaced_timesteps
    from ui.vdm import frames, live, run

    schedule = schedule_of(served[1], "learned")
    session = live.remember(run.reset(DS, "ddim", 6, 0.0, 0))
    head = frames.message(session)["head"]
    assert head["timesteps"] == list(spaced_timesteps(schedule, 6, spacing="karras"))
    log_snr = np.frombuffer(base64.b64decode(head["log_snr"]), "<f4")
    assert np.array_equal(log_snr, schedule.log_snr[1:].numpy().astype(np.float32))
    ids = {"key": session.key, "run": session.id}
    msg = asyncio.run(live.step({**ids, "have": 0}))
    assert (msg["start"], msg["taken"], len(msg["steps"])) == (0, 1, 1)
    cells, labels = run.panel_cells(session, 1)
    assert np.array_equal(_u8(head["x_T"]), cells[0])
    assert all(np.array_equal(_u8(msg["steps"][0][k]), cell)
               for k, cell in zip(("eps", "x0", "x"), cells[1:]))
    assert labels[0] == f"x_t, t = {head['timesteps'][0]}" and msg["steps"][0]["t"] == \
        head["timesteps"][0]

    async def run_and_follow():
        await live.start({**ids, "have": 1})
        have, replies = 1, 0
        while have < 6 and replies < 100:
            reply = await live.follow({**ids, "have": have, "wait": True})
            assert reply["start"] == have
            have, replies = have + len(reply["steps"]), replies + 1
        return reply
    reply = asyncio.run(run_and_follow())
    assert reply["done"] and reply["taken"] == 6
    assert np.array_equal(_u8(reply["steps"][-1]["x"]), run.image(session.run.x))
    msg = asyncio.run(live.rewind({**ids, "have": 6, "shown": 2}))
    assert (msg["start"], msg["taken"], msg["steps"]) == (2, 2, [])
    msg = asyncio.run(live.branch({**ids, "have": 2, "shown": 2, "seed": 5}))
    assert msg["taken"] == 3 and msg["branches"] == [[0, 0], [2, 5]]
    assert "error" in asyncio.run(live.step({"key": "not a run", "have": 0, "run": 1}))


def test_the_run_view_stop_leaves_the_run_on_the_step_shown(served):
    """Stop from the page: the run ends after the step under way and goes back to the step the
    page showed, and takes no step after that."""
    import asyncio

    from ui.vdm import live, run

    session = live.remember(run.reset(DS, "ddpm", 1000, 0.0, 0))
    ids = {"key": session.key, "run": session.id}

    async def run_then_stop():
        await live.start({**ids, "have": 0})
        reply = await live.follow({**ids, "have": 0, "wait": True})
        shown = reply["start"] + len(reply["steps"])
        stopped = await live.stop({**ids, "have": shown, "shown": shown})
        await asyncio.sleep(0.3)
        return shown, stopped
    shown, stopped = asyncio.run(run_then_stop())
    assert stopped["stopped"] and stopped["taken"] == shown == session.run.taken
    assert not stopped["active"] and 0 < shown < 1000


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
    """A setting's event with the run's own settings (a slider's box losing focus on the way to
    Step) keeps the steps taken; another setting starts a new run."""
    client = session(served)
    _run(client, steps=12, seed=3)
    for _ in range(2):
        client.predict(api_name="/vdm_step")
    client.predict(DS, "ddpm", 12, 0.0, 3, "karras", api_name="/vdm_reconfigure_view")
    assert client.predict(api_name="/vdm_step")[3]["taken"] == 3
    message, _ = client.predict(DS, "ddpm", 20, 0.0, 3, "karras",
                                api_name="/vdm_reconfigure_view")
    assert message["taken"] == 0 and message["head"]["steps"] == 20
    assert client.predict(api_name="/vdm_step")[3]["steps"] == 20
    message, _ = client.predict(DS, "ddpm", 20, 0.0, 3, "linspace",
                                api_name="/vdm_reconfigure_view")
    assert message["taken"] == 0 and message["head"]["spacing"] == "evenly in t"


@pytest.mark.parametrize("args, message", [
    ((DS, "ddpm", 0, 0.0, 0), "steps: 0 is not valid"),
    ((DS, "ddpm", 10, 1.5, 0), r"eta: 1\.5 is not valid; valid: a number in \[0, 1\]"),
    ((DS, "euler", 10, 0.0, 0), "sampler: 'euler' is not valid; valid: one of"),
    ((DS, "ddim", 10, 0.0, -3), "seed: -3 is not valid"),
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
    with pytest.raises(AppError, match="t: 5000 is not valid"):
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
    with pytest.raises(AppError, match="frames: 1 is not valid"):
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


def test_a_run_taken_in_the_page_is_the_servers_run(served):
    """The page takes its run's steps itself from the server's plan (ui/vdm/pagerun.py): the
    sampler's rules, x_T and every step's z. Applied with the network's eps_hat they give the
    server's own run, branches included; and the server's copy catches up to the page's step
    (a download, the switch to server compute) to the very same run."""
    import asyncio
    import base64

    import torch

    from explorer.trajectory import SHAPE
    from ui.store import STORE
    from ui.vdm import live, pagerun, run

    model = STORE.model(DS, "vdm")

    def page_steps(plan: dict, x: torch.Tensor, start: int, end: int) -> list[torch.Tensor]:
        return _page_steps(model, plan, x, start, end)[0]

    page = live.remember(run.reset(DS, "ddpm", 8, 0.0, 4))
    ids = {"key": page.key, "run": page.id}
    plan = asyncio.run(live.plan({**ids, "start": 0, "branches": [[0, 4]]}))
    assert plan["noise_steps"] == list(range(7))          # DDPM: every step but the last
    with torch.no_grad():
        xs = [_f32(plan["x"])]
        xs += page_steps(plan, xs[0], 0, 5)
        # a branch at step 3 with seed 9: the noise from step 3 on (x_3 is the page's)
        branches = [[0, 4], [3, 9]]
        again = asyncio.run(live.plan({**ids, "start": 3, "branches": branches,
                                       "need_x": False}))
        assert again["x"] is None and again["noise_steps"] == list(range(3, 7))
        xs = xs[:4] + page_steps(again, xs[3], 3, 8)
    assert page.run.taken == 0                             # the server took no step meanwhile

    server = run.reset(DS, "ddpm", 8, 0.0, 4)             # the same run, taken by the server
    run.step(server, 3)
    run.branch(server, 3, 9)
    run.step(server, 4)
    assert len(server.run.xs) == len(xs) == 9
    for ours, theirs in zip(xs, server.run.xs):
        assert (ours - theirs).abs().max() <= 1e-5

    pagerun.catch_up(page, 8, branches)                    # the server's copy of the page's run
    assert page.run.branches == [(0, 4), (3, 9)]
    assert all(torch.equal(a, b) for a, b in zip(page.run.xs, server.run.xs))
    msg = asyncio.run(live.rewind({**ids, "have": 8, "shown": 2,
                                   "at": {"taken": 5, "branches": [[0, 4]]}}))
    assert msg["taken"] == 2 and page.run.branches == [(0, 4)]

    for bad in ([[0, 5]], [[0, 4], [3, 1], [3, 2]], [[0, 4], [8, 1]], "x", [], [[0, 4, 1]]):
        with pytest.raises(ValueError, match="branches"):
            pagerun.check_branches(page, bad)
    assert "error" in asyncio.run(live.plan({**ids, "start": 8, "branches": [[0, 4]]}))


def _f32(text: str, shape=(1, 1, 28, 28)):
    """Float32 samples the server sent (base64), as a tensor of `shape`."""
    import base64

    import torch
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), "<f4").copy()).reshape(shape)


def _page_steps(model, plan: dict, x, start: int, end: int, x0_before=None):
    """The steps start..end-1 as the page takes them from a plan (lib/sampler.js's map, in
    torch), with the x0_hat of the step before `start` for a 2nd-order rule. Returns (samples
    after each step, the last x0_hat)."""
    import torch
    rules = [dict(zip(plan["fields"], r)) for r in plan["rules"]]
    noise = _f32(plan["noise"], (-1, 1, 1, 28, 28)) if plan["noise"] else None
    out = []
    with torch.no_grad():
        for k in range(start, end):
            r = rules[k]
            eps = model.predict_noise(x, torch.tensor([r["t"]]))
            x0 = (x - r["root_one_minus_alpha_bar"] * eps) / r["root_alpha_bar"]
            if r["clip"]:
                x0 = x0.clamp(-1, 1)
                eps = (x - r["root_alpha_bar"] * x0) / r["root_one_minus_alpha_bar"]
            mean = r["x0"] * x0 + r["xt"] * x + r["eps"] * eps
            x = mean + r["x0_prev"] * x0_before if r["x0_prev"] else mean
            if r["noise"] > 0:
                x = x + r["noise"] * noise[plan["noise_steps"].index(k)]
            out.append(x)
            x0_before = x0
    return out, x0_before


@pytest.mark.parametrize("sampler, steps, evaluations", [("heun", 5, 9), ("dpmpp2m", 6, 6)])
def test_a_second_order_run_on_the_server_and_taken_over_by_the_page(served, sampler, steps,
                                                                      evaluations):
    """The reverse run offers the ODE solvers: Heun's steps are its network evaluations (the
    caption says which is an Euler step and which the corrector), and a page taking a run over
    part way gets x_k and the x0_hat of step k - 1 and ends where the server's run ends."""
    import asyncio

    from ui.store import STORE
    from ui.vdm import live, run

    session = run.reset(DS, sampler, steps, 0.0, 4)
    info = run.numbers(session, 0)
    assert (info["steps"], info["evaluations"], len(info["timesteps"])) == (
        steps, evaluations, evaluations)
    run.step(session, 3)
    if sampler == "heun":
        assert "step 1 was an Euler step t = 1000 -> " in run.caption(session, 1)
        assert f"step 2 was the corrector at t = {info['timesteps'][1]}" in run.caption(session, 2)
        assert "(9 network evaluations, each a step below)" in run.caption(session, 2)
    page = live.remember(session)
    plan = asyncio.run(live.plan({"key": page.key, "run": page.id, "start": 3,
                                  "branches": [[0, 4]]}))
    assert any(r[plan["fields"].index("x0_prev")] for r in plan["rules"])
    x0_before = _f32(plan["x0_before"])
    assert (x0_before - session.run.x0s[2]).abs().max() == 0
    model = STORE.model(DS, "vdm")
    xs, _ = _page_steps(model, plan, _f32(plan["x"]), 3, evaluations, x0_before)
    run.step(session, evaluations)                        # the server's own run to the end
    assert session.run.done and session.run.taken == evaluations
    for ours, theirs in zip(xs, session.run.xs[4:]):
        assert (ours - theirs).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="evaluates the network twice a step; valid: 1..500"):
        run.reset(DS, "heun", 501, 0.0, 4)
