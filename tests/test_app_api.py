"""The app's API through gradio_client against the launched app: every vae_* and hvae_* endpoint
(shapes, determinism with a seed, clear errors for bad arguments), on tiny untrained models."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from PIL import Image

from app_env import build_pretrained, close_app, launch_app

pytest.importorskip("gradio_client")

from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from bench.client import gradio_client  # noqa: E402

from ui.common import PIXEL, STRIP_PIXEL, compose  # noqa: E402

REQUIRED = ["vae_encode", "vae_interpolate", "vae_project", "hvae_encode", "hvae_interpolate",
            "hvae_project", "vae_sample", "vae2d_grid", "hvae_resample", "hvae_sample",
            "vae_pick_upload", "hvae_pick_upload", "playground_setup", "playground_train",
            "playground_pause", "playground_stop", "playground_field", "playground_trajectories",
            "playground_trajectories_gif", "playground_model", "playground_training_gif",
            "playground_points_csv"]
DS = "mnist"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    yield gradio_client(url), root
    close_app(app)


@pytest.fixture(scope="module")
def client(served):
    return served[0]


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def frames_of(path, n: int, pixel: int = STRIP_PIXEL, col_labels=None, row_labels=None,
              rows: int = 1) -> list[list[np.ndarray]]:
    """Cut a composed grid back into its 28x28 frames, locating them with a probe drawn by the
    same `compose` (frames of 255; text is drawn at 235), which also checks the image's size."""
    image = png(path)
    white = np.full((28, 28), 255, np.uint8)
    probe = compose([[white] * n] * rows, pixel, col_labels, row_labels) == 255
    assert image.shape == probe.shape
    starts = lambda mask: [i for i in np.flatnonzero(mask) if i == 0 or not mask[i - 1]]
    xs, ys = starts(probe.any(0)), starts(probe.any(1))
    assert len(xs) == n and len(ys) == rows
    return [[image[y:y + 28 * pixel:pixel, x:x + 28 * pixel:pixel] for x in xs] for y in ys]


def plot_json(value) -> dict:
    return json.loads(value["plot"])


def array(value) -> np.ndarray:
    """A plotly data array: a list, or plotly 6's typed array {dtype, bdata}."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def gallery(root, dataset=DS):
    with np.load(root / dataset / "gallery.npz") as npz:
        return npz["images"], npz["labels"]


def test_every_required_api_name_is_public(client):
    names = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    missing = [n for n in REQUIRED if f"/{n}" not in names]
    assert not missing


def test_the_page_manifest_names_elements_the_app_has(client):
    """What page and server share comes from ui/page.py: every element the page scripts act on
    exists, and every event a view triggers is named in the views' js_on_load."""
    from ui.page import MANIFEST, ON_LOAD, VIEW_EVENTS
    ids = {c["props"].get("elem_id") for c in client.config["components"]}
    assert set(MANIFEST["maps"]) | set(MANIFEST["sketches"]) <= ids
    assert {"page", "vdm-scrub", "vdm-run-view"} <= ids
    assert all(f"'{event}'" in ON_LOAD for event in VIEW_EVENTS)
    assert set(MANIFEST["keys"].values()) == {"step", "run", "stop", "presenter", "t-10", "t+10"}


def test_the_views_of_a_and_b_follow_the_slot_keys(client):
    """No event is triggered by a picture's change: Gradio's Image fires it whenever the page
    swaps its value for an equal copy, and the views of A and B then ran again and again by
    themselves (ui/panel.py, InputPanel). They follow the slots' keys, which every pick the
    page makes sets."""
    config = client.config
    kinds = {c["id"]: c["type"] for c in config["components"]}
    triggers = [(kinds.get(target), event, d.get("api_name"))
                for d in config["dependencies"] for target, event in d["targets"]]
    assert [t for t in triggers if t[:2] == ("image", "change")] == []
    by_keys = {name for kind, event, name in triggers if (kind, event) == ("state", "change")}
    assert {"vae_encode", "vae_interpolate", "vae_walk_view", "vae_project", "hvae_encode",
            "hvae_resample", "hvae_interpolate", "hvae_walk_view", "hvae_project",
            "vdm_scrub_view"} <= by_keys
    picks = {d["api_name"]: d for d in config["dependencies"]
             if d.get("api_name") in ("pick_gallery", "pick_index_a", "pick_index_b",
                                      "pick_upload", "pick_drawing", "pick_map_point",
                                      "dataset_switch", "talk_scene")}
    assert len(picks) == 8
    for name, d in picks.items():
        assert [kinds[o] for o in d["outputs"]].count("state") == (1 if "index" in name else 2)


# ---------------------------------------------------------------- VAE

def test_vae_encode_shapes_terms_and_determinism(served):
    client, root = served
    images, _ = gallery(root)
    pair, posterior, draws, table, info = client.predict(DS, 3, None, 5, 7, api_name="/vae_encode")
    x, recon = frames_of(pair, 2, PIXEL, ["x", "mean p(x | z = mu)"])[0]
    assert np.array_equal(x, images[3])                         # the model saw gallery image 3
    assert len(frames_of(draws, 5, col_labels=[f"z_{i}" for i in range(1, 6)])[0]) == 5
    assert info["latent_dim"] == len(info["mu"]) == len(info["sigma"]) == 6
    assert all(s > 0 for s in info["sigma"])
    nats, bpd = info["nats"], info["bits_per_dim"]
    assert nats["total"] == pytest.approx(nats["reconstruction"] + nats["kl"], rel=1e-5)
    assert bpd["total"] == pytest.approx(nats["total"] / (784 * math.log(2)), rel=1e-6)
    assert "KL" in table and "bits/dim" in table
    assert len(plot_json(posterior)["data"]) == 1
    again = client.predict(DS, 3, None, 5, 7, api_name="/vae_encode")
    assert again[4] == info and np.array_equal(png(again[2]), png(draws))
    other = client.predict(DS, 3, None, 5, 8, api_name="/vae_encode")
    assert other[4]["mu"] == info["mu"]                          # mu(x) does not depend on eps
    assert not np.array_equal(png(other[2]), png(draws))          # the draws do


def test_vae_encode_takes_any_uploaded_image(served, tmp_path):
    client, root = served
    images, _ = gallery(root)
    # an exact nearest-neighbour upscale of a gallery image is that image
    Image.fromarray(np.kron(images[5], np.ones((4, 4), np.uint8))).save(tmp_path / "big.png")
    by_file = client.predict(DS, None, handle_file(str(tmp_path / "big.png")), 2, 0,
                             api_name="/vae_encode")
    by_index = client.predict(DS, 5, None, 2, 0, api_name="/vae_encode")
    assert by_file[4]["index"] is None
    assert by_file[4]["mu"] == pytest.approx(by_index[4]["mu"])
    # RGBA, black on transparent, odd size: composited on white, inverted, fitted into 28x28
    rgba = np.zeros((90, 50, 4), np.uint8)
    rgba[20:70, 20:30] = (0, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "stroke.png")
    pair = client.predict(DS, None, handle_file(str(tmp_path / "stroke.png")), 1, 0,
                          api_name="/vae_encode")[0]
    x = frames_of(pair, 2, PIXEL, ["x", "mean p(x | z = mu)"])[0][0]
    assert x[0].max() == 0 and x[14].max() > 200                  # a white bar on black, centred


@pytest.mark.parametrize("args, message", [
    (("mnist", 5000, None, 4, 0), r"index: 5000 is not valid; valid: a whole number in 0\.\.\d+"),
    (("mnist", 1, None, 0, 0), r"k: 0 is not valid; valid: a whole number in 1\.\.16"),
    (("mnist", 1, None, 4, -1), r"seed: -1 is not valid"),
    (("cifar", 1, None, 4, 0), "dataset: 'cifar' is not valid; valid: one of"),
    (("mnist", None, None, 4, 0), "index and image are both empty"),
])
def test_vae_encode_bad_arguments_give_clear_errors(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/vae_encode")


def test_unreadable_upload_is_a_clear_error_and_the_app_keeps_serving(client, tmp_path):
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(AppError, match="could not read 'broken.png' as an image"):
        client.predict(DS, None, handle_file(str(tmp_path / "broken.png")), 4, 0,
                       api_name="/vae_encode")
    assert client.predict(DS, 0, None, 2, 0, api_name="/vae_encode")[4]["latent_dim"] == 6


def test_vae_interpolate_endpoints_and_norms(served):
    client, root = served
    images, _ = gallery(root)
    labels = [f"{w:.2f}" for w in np.linspace(0, 1, 5)]
    out = client.predict(DS, 0, None, 150, None, 5, api_name="/vae_interpolate")
    lerp, slerp, fade = (frames_of(p, 5, col_labels=labels, row_labels=[name])[0]
                         for p, name in zip(out[:3], ("lerp", "slerp", "pixels")))
    for i in (0, -1):                                            # both paths start at A, end at B
        assert np.array_equal(lerp[i], slerp[i])
    assert np.array_equal(fade[0], images[0]) and np.array_equal(fade[-1], images[150])
    traces = plot_json(out[3])["data"]
    norms = {t["name"]: array(t["y"]) for t in traces}
    assert set(norms) == {"lerp", "slerp"} and all(len(v) == 5 for v in norms.values())
    assert norms["lerp"][[0, -1]] == pytest.approx(norms["slerp"][[0, -1]], rel=1e-5)
    assert np.array_equal(png(client.predict(DS, 0, None, 150, None, 5,
                                             api_name="/vae_interpolate")[0]), png(out[0]))
    for frames in (1, 99):
        with pytest.raises(AppError, match=rf"frames: {frames} is not valid; valid: a whole number in 2\.\.16"):
            client.predict(DS, 0, None, 150, None, frames, api_name="/vae_interpolate")


def _map_points(figure: dict) -> tuple[np.ndarray, dict]:
    data = plot_json(figure)["data"]
    index = np.concatenate([array(t["customdata"]) for t in data if t["type"] == "scattergl"])
    others = {t["name"]: t for t in data if t["type"] != "scattergl"}
    return index, others


@pytest.mark.parametrize("method, perplexity", [("pca", 30), ("tsne", 10)])
def test_vae_project_maps_the_whole_gallery_with_a_and_b(served, method, perplexity):
    client, root = served
    _, labels = gallery(root)
    figure, _ = client.predict(DS, method, perplexity, 0, None, 150, None, 6,
                               api_name="/vae_project")                # (map, CSV)
    index, others = _map_points(figure)
    assert sorted(index.tolist()) == list(range(len(labels)))   # every gallery point, clickable
    assert {"A", "B"} <= set(others)
    paths = {n for n in others if n.endswith("path")}
    assert paths == ({"lerp path", "slerp path"} if method == "pca" else set())
    again = client.predict(DS, method, perplexity, 0, None, 150, None, 6, api_name="/vae_project")
    assert again[0] == figure                                   # cached, deterministic


@pytest.mark.parametrize("method, perplexity, message", [
    ("tsne", 500, r"perplexity: 500 is not valid; valid: a whole number in 5\.\.50"),
    ("umap", 30, "method: 'umap' is not valid; valid: one of 'pca', 'tsne'"),
    ("pca", -1, "perplexity: -1 is not valid"),
    ("tsne", 12, "perplexity: 12 is not valid; valid: one of 5, 10, 15")])
def test_vae_project_bad_arguments(client, method, perplexity, message):
    with pytest.raises(AppError, match=message):
        client.predict(DS, method, perplexity, 0, None, 1, None, 4, api_name="/vae_project")


def test_vae_sample_grid_and_seed(client):
    a = client.predict(DS, 10, 1.0, 3, api_name="/vae_sample")
    assert len(frames_of(a, 8, rows=2)) == 2                     # 10 samples, rows of 8
    assert np.array_equal(png(client.predict(DS, 10, 1.0, 3, api_name="/vae_sample")), png(a))
    assert not np.array_equal(png(client.predict(DS, 10, 1.0, 4, api_name="/vae_sample")), png(a))
    with pytest.raises(AppError, match=r"temperature: 9\.0 is not valid; valid: a number in \[0, 2\]"):
        client.predict(DS, 10, 9.0, 3, api_name="/vae_sample")


def test_vae2d_grid_and_a_missing_checkpoint(client):
    figure = plot_json(client.predict(DS, 6, 2.0, api_name="/vae2d_grid"))
    assert figure["layout"]["images"][0]["source"].startswith("data:image/png;base64,")
    # the test folder has no Fashion-MNIST 2-D VAE: the error names the file and the command
    with pytest.raises(AppError, match=r"vae2d\.json.*--set latent_dim=2"):
        client.predict("fashion-mnist", 6, 2.0, api_name="/vae2d_grid")


def test_pick_upload_puts_the_model_view_in_a_slot(client, tmp_path):
    rgb = np.full((64, 64, 3), 255, np.uint8)
    rgb[10:54, 28:36] = 0                                        # black bar on white
    Image.fromarray(rgb).save(tmp_path / "bar.jpg")
    a_index, a_image, b_index, b_image = client.predict(
        DS, "B", handle_file(str(tmp_path / "bar.jpg")), api_name="/vae_pick_upload")
    assert b_index is None and png(b_image).shape == (280, 280)
    assert png(b_image)[140, 140] > 200 and png(b_image)[5, 5] == 0


# ---------------------------------------------------------------- HVAE

def test_hvae_encode_terms_layers_and_active_units(served):
    client, root = served
    pair, layers, table, info = client.predict(DS, 7, None, 1, api_name="/hvae_encode")
    assert info["num_layers"] == 3 and info["latent_dims"] == [98, 147, 4]
    nats = info["nats"]
    assert list(nats) == ["reconstruction", "consistency_1", "consistency_2", "prior_matching",
                          "total"]
    assert nats["total"] == pytest.approx(sum(v for k, v in nats.items() if k != "total"),
                                          rel=1e-5, abs=1e-3)
    assert [len(m) for m in info["means"]] == info["latent_dims"]
    from explorer.checkpoint import load_checkpoint
    from explorer.data import to_float
    model, _ = load_checkpoint(root / DS / "hvae")
    assert info["active_units"] == model.active_units(to_float(gallery(root)[0]))
    assert "consistency of layer 2" in table and "active units" in table
    assert len(plot_json(layers)["data"]) == 3
    assert client.predict(DS, 7, None, 1, api_name="/hvae_encode")[3] == info


def test_hvae_resample_layer(client):
    labels = ["x", "recon", *[f"draw {i}" for i in range(1, 5)]]
    for layer in (1, 2, 3):
        out = client.predict(DS, 2, None, layer, 1.0, 4, 0, "prior mean",
                             api_name="/hvae_resample")
        assert len(frames_of(out, 6, col_labels=labels, row_labels=[f"z_{layer}"])[0]) == 6
        again = client.predict(DS, 2, None, layer, 1.0, 4, 0, "prior mean",
                               api_name="/hvae_resample")
        assert np.array_equal(png(again), png(out))
    cold = client.predict(DS, 2, None, 2, 0.0, 4, 0, "sampled", api_name="/hvae_resample")
    draws = frames_of(cold, 6, col_labels=labels, row_labels=["z_2"])[0][2:]
    assert all(np.array_equal(d, draws[0]) for d in draws)      # T = 0: every draw is the mean
    with pytest.raises(AppError, match=r"layer must be a whole number in 1\.\.3"):
        client.predict(DS, 2, None, 4, 1.0, 4, 0, "prior mean", api_name="/hvae_resample")
    with pytest.raises(AppError, match="below: 'above' is not valid; valid: one of"):
        client.predict(DS, 2, None, 1, 1.0, 4, 0, "above", api_name="/hvae_resample")


def test_hvae_interpolate_at_each_layer(client):
    labels = [f"{w:.2f}" for w in np.linspace(0, 1, 4)]
    recon = frames_of(client.predict(DS, 0, None, 1, 1.0, 1, 0, "prior mean",
                                     api_name="/hvae_resample"), 3,
                      col_labels=["x", "recon", "draw 1"], row_labels=["z_1"])[0][1]
    for layer in (1, 3):
        lerp, slerp, norms, _ = client.predict(DS, 0, None, 150, None, layer, 4,
                                               api_name="/hvae_interpolate")   # _: the GIF
        lf = frames_of(lerp, 4, col_labels=labels, row_labels=[f"lerp z_{layer}"])[0]
        sf = frames_of(slerp, 4, col_labels=labels, row_labels=[f"slerp z_{layer}"])[0]
        assert np.array_equal(lf[0], sf[0]) and np.array_equal(lf[-1], sf[-1])
        if layer == 1:                                          # z_1 of A decodes to A's recon
            assert np.array_equal(lf[0], recon)
        assert len(plot_json(norms)["data"]) == 2
    with pytest.raises(AppError, match="layer: 0 is not valid"):
        client.predict(DS, 0, None, 150, None, 0, 4, api_name="/hvae_interpolate")


def test_hvae_project_each_layer(served):
    client, root = served
    _, labels = gallery(root)
    for layer in (1, 3):
        index, others = _map_points(client.predict(DS, layer, "pca", 30, 0, None, 150, None, 5,
                                                   api_name="/hvae_project")[0])
        assert len(index) == len(labels) and {"A", "B", "lerp path"} <= set(others)
    with pytest.raises(AppError, match=r"layer must be a whole number in 1\.\.3"):
        client.predict(DS, 5, "pca", 30, 0, None, 150, None, 5, api_name="/hvae_project")


def test_hvae_sample_level_by_level(client):
    labels = ["z_3", "z_2", "z_1 -> x"]
    out = client.predict(DS, 5, 1.0, 2, api_name="/hvae_sample")
    assert len(frames_of(out, 5, rows=3, row_labels=labels)) == 3
    assert np.array_equal(png(client.predict(DS, 5, 1.0, 2, api_name="/hvae_sample")), png(out))
    with pytest.raises(AppError, match="n: 0 is not valid; valid: a whole number in 1"):
        client.predict(DS, 0, 1.0, 2, api_name="/hvae_sample")


# ---------------------------------------------------------------- choosing inputs

@pytest.mark.parametrize("prefix", ["vae", "hvae"])
def test_pick_endpoints(served, prefix, tmp_path):
    client, root = served
    images, _ = gallery(root)
    a = client.predict(DS, 42, api_name=f"/{prefix}_pick_index_a")
    b = client.predict(DS, 43, api_name=f"/{prefix}_pick_index_b")
    assert np.array_equal(png(a)[::PIXEL, ::PIXEL], images[42])
    assert np.array_equal(png(b)[::PIXEL, ::PIXEL], images[43])
    a_index, a_image, _, _ = client.predict(DS, "A", '{"index": 7, "time": 1}',
                                            api_name=f"/{prefix}_pick_map")
    assert a_index == 7 and np.array_equal(png(a_image)[::PIXEL, ::PIXEL], images[7])
    hovered = client.predict(DS, "9", api_name=f"/{prefix}_map_hover")
    assert np.array_equal(png(hovered)[::PIXEL, ::PIXEL], images[9])
    with pytest.raises(AppError, match="payload: .* is not valid; valid: a whole number"):
        client.predict(DS, "A", '{"index": "x"}', api_name=f"/{prefix}_pick_map")
    # a drawing: black strokes on a white RGBA canvas, as gr.Sketchpad sends it
    canvas = np.full((280, 280, 4), 255, np.uint8)
    canvas[60:220, 120:160, :3] = 0
    Image.fromarray(canvas, "RGBA").save(tmp_path / "drawing.png")
    drawing = {"background": None, "layers": [],
               "composite": handle_file(str(tmp_path / "drawing.png"))}
    _, _, b_index, b_image = client.predict(DS, "B", drawing, api_name=f"/{prefix}_pick_drawing")
    seen = png(b_image)[::PIXEL, ::PIXEL]
    assert b_index is None and seen[14, 14] > 200 and seen[0, 0] == 0


def test_vae_pick_upload_then_encode_places_it_on_the_map(client, tmp_path):
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(AppError, match="blank"):
        client.predict(DS, "A", handle_file(str(tmp_path / "blank.png")),
                       api_name="/vae_pick_upload")
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[5:35, 18:22] = 255
    Image.fromarray(rgb).save(tmp_path / "one.png")
    _, a_image, _, _ = client.predict(DS, "A", handle_file(str(tmp_path / "one.png")),
                                      api_name="/vae_pick_upload")
    _, others = _map_points(client.predict(DS, "pca", 30, None, handle_file(a_image), 3, None,
                                           4, api_name="/vae_project")[0])
    assert {"A", "B", "lerp path"} <= set(others)
