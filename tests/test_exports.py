"""Exports for slides, through gradio_client against the launched app on tiny untrained models:
the GIFs (forward scrub, reverse run, the three interpolations) are valid GIFs with exactly the
frames they promise, each frame the same size and showing what the page shows; the map CSVs list
every gallery point with its label and the plot's own coordinates; every composed picture has a
download button (its PNG)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from test_app_api import array, frames_of, gallery, plot_json, png
from test_app_vdm import PANEL_PIXEL, panel_frames, served, session  # noqa: F401 (a fixture)

pytest.importorskip("gradio_client")

from gradio_client.exceptions import AppError  # noqa: E402

from ui.common import PIXEL, STRIP_PIXEL, compose, ping_pong  # noqa: E402
from ui.vdm.run import GIF_FRAMES  # noqa: E402

DS = "mnist"
HEADER = ["index", "label", "class_name", "x", "y"]
PICTURES = ["vae-recon", "vae-draws", "vae-samples", "vae-lerp", "vae-slerp", "vae-fade",
            "hvae-recon", "hvae-resampled", "hvae-lerp", "hvae-slerp", "hvae-ancestral",
            "vdm-xt", "vdm-panel", "vdm-film", "vdm-nd-grid", "vdm-slerp", "vdm-fade"]
FILES = ["vae-itp-gif", "vae-map-csv", "hvae-itp-gif", "hvae-map-csv", "vdm-scrub-gif",
         "vdm-run-gif", "vdm-itp-gif", "vdm-dissolve-csv"]




def gif_frames(path) -> list[np.ndarray]:
    """Every frame of a GIF as a grey uint8 array (the file must be a GIF, every frame the same
    size)."""
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("L")))
    assert len({f.shape for f in frames}) == 1
    return frames


def durations(path) -> list[int]:
    with Image.open(path) as gif:
        out = []
        for k in range(gif.n_frames):
            gif.seek(k)
            out.append(gif.info["duration"])
    return out


def cut(image: np.ndarray, n: int, pixel: int, labelled: bool = True) -> list[np.ndarray]:
    """The n 28x28 images of one composed row (labels above its columns), nearest-neighbour
    upscaled by `pixel`: located with a probe drawn by the same `compose`, every `pixel`-th
    pixel inside each frame's box."""
    white = np.full((28, 28), 255, np.uint8)
    probe = compose([[white] * n], pixel, ["x"] * n if labelled else None) == 255
    assert image.shape == probe.shape
    starts = [i for i in np.flatnonzero(probe.any(0)) if i == 0 or not probe.any(0)[i - 1]]
    y = int(np.flatnonzero(probe.any(1))[0])
    return [image[y:y + 28 * pixel:pixel, x:x + 28 * pixel:pixel] for x in starts]


def test_the_new_api_names_are_public(served):
    names = session(served).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/vdm_scrub_gif", "/vdm_run_gif"} <= set(names)


def test_every_composed_picture_has_a_download_button(served):
    """picture_out: PNG, the download button beside fullscreen; the new files are gr.File."""
    client = session(served)
    props = {c["props"].get("elem_id"): (c["type"], c["props"])
             for c in client.config["components"]}
    for elem_id in PICTURES:
        kind, p = props[elem_id]
        assert kind == "image" and p["format"] == "png"
        assert "download" in p["buttons"] and "fullscreen" in p["buttons"], elem_id
    assert all(props[elem_id][0] == "file" for elem_id in FILES)
    sample = client.predict(DS, 3, 1.0, 0, api_name="/vae_sample")
    with Image.open(sample) as image:
        assert image.format == "PNG"


# ---------------------------------------------------------------- GIFs of the VDM tab

@pytest.mark.parametrize("schedule, n", [("cosine", 12), ("learned", 2), ("linear", 40)])
def test_vdm_scrub_gif_has_n_frames_from_the_image_to_noise(served, schedule, n):
    """n frames, x_t at t = round(linspace(0, T, n)): the first is image A itself, and each
    frame is the scrub's own x_t (the same eps as /vdm_forward with that seed)."""
    client, (_, root) = session(served), served
    images, _ = gallery(root)
    frames = gif_frames(client.predict(DS, 4, None, schedule, 3, n, api_name="/vdm_scrub_gif"))
    assert len(frames) == n
    assert np.array_equal(cut(frames[0], 1, PIXEL)[0], images[4])
    for k, t in ((n - 1, 1000), (n // 2, int(np.linspace(0, 1000, n).round()[n // 2]))):
        shown = client.predict(DS, 4, None, schedule, 3, t, api_name="/vdm_forward")[0]
        x_t = frames_of(shown, 1, PIXEL)[0][0]
        assert np.array_equal(cut(frames[k], 1, PIXEL)[0], x_t)


def test_vdm_scrub_gif_bad_arguments(served):
    client = session(served)
    with pytest.raises(AppError, match="frames: 1 is not valid; valid: a whole number in 2"):
        client.predict(DS, 4, None, "cosine", 3, 1, api_name="/vdm_scrub_gif")
    with pytest.raises(AppError, match="schedule: 'sigmoid' is not valid"):
        client.predict(DS, 4, None, "sigmoid", 3, 10, api_name="/vdm_scrub_gif")


def test_vdm_run_gif_has_one_frame_per_moment_of_the_run(served):
    """After k steps: k + 1 frames [x_t | x0_hat], x_T first, the current x_t last (with the
    last step's x0_hat); the last frame held."""
    client = session(served)
    with pytest.raises(AppError, match="no run yet"):
        client.predict(api_name="/vdm_run_gif")
    client.predict(DS, "ddim", 5, 0.0, 0, api_name="/vdm_reset")
    first = panel_frames(client.predict(0, api_name="/vdm_show")[0])
    frames = gif_frames(client.predict(api_name="/vdm_run_gif"))
    assert len(frames) == 1
    assert np.array_equal(cut(frames[0], 2, PANEL_PIXEL)[0], first[0])            # x_T
    for _ in range(2):
        client.predict(api_name="/vdm_step")
    assert len(gif_frames(client.predict(api_name="/vdm_run_gif"))) == 3
    client.submit(api_name="/vdm_run").result()
    path = client.predict(api_name="/vdm_run_gif")
    frames = gif_frames(path)
    last = panel_frames(client.predict(5, api_name="/vdm_show")[0])
    x_t, x0_hat = cut(frames[-1], 2, PANEL_PIXEL)
    assert len(frames) == 6 and np.array_equal(cut(frames[0], 2, PANEL_PIXEL)[0], first[0])
    assert np.array_equal(x_t, last[3]) and np.array_equal(x0_hat, last[2])
    assert durations(path)[-1] > durations(path)[0]


@pytest.mark.parametrize("steps, expected", [(59, 60), (100, GIF_FRAMES)])
def test_vdm_run_gif_keeps_at_most_60_frames_first_and_last_included(served, steps, expected):
    client = session(served)
    client.predict(DS, "ddim", steps, 0.0, 0, api_name="/vdm_reset")
    first = panel_frames(client.predict(0, api_name="/vdm_show")[0])[0]
    client.submit(api_name="/vdm_run").result()
    last = panel_frames(client.predict(steps, api_name="/vdm_show")[0])[3]
    frames = gif_frames(client.predict(api_name="/vdm_run_gif"))
    assert len(frames) == min(steps + 1, GIF_FRAMES) == expected
    assert np.array_equal(cut(frames[0], 2, PANEL_PIXEL)[0], first)
    assert np.array_equal(cut(frames[-1], 2, PANEL_PIXEL)[0], last)


# ---------------------------------------------------------------- interpolation GIFs

def strip_frames(path, frames: int, row_label: str) -> list[np.ndarray]:
    labels = [f"{w:.2f}" for w in np.linspace(0, 1, frames)]
    return frames_of(path, frames, col_labels=labels, row_labels=[row_label])[0]


def check_ping_pong(gif_path, columns: list[list[np.ndarray]], pixel: int) -> None:
    """The GIF plays the strips' frames 0..F-1..1 (2F - 2 frames), columns side by side, A and
    B held longer than the frames between."""
    frames, n = gif_frames(gif_path), len(columns[0])
    order = ping_pong(n)
    assert len(frames) == 2 * n - 2 == len(order)
    for frame, i in zip(frames, order):
        assert all(np.array_equal(got, column[i])
                   for got, column in zip(cut(frame, len(columns), pixel), columns))
    held = durations(gif_path)
    assert held[0] == held[n - 1] > max(held[1:n - 1], default=0)


@pytest.mark.parametrize("frames", [2, 5])
def test_vae_interpolation_gif_is_slerp_lerp_pixels_there_and_back(served, frames):
    client = session(served)
    out = client.predict(DS, 0, None, 150, None, frames, api_name="/vae_interpolate")
    lerp, slerp, fade = (strip_frames(p, frames, name)
                         for p, name in zip(out[:3], ("lerp", "slerp", "pixels")))
    check_ping_pong(out[4], [slerp, lerp, fade], STRIP_PIXEL)


def test_hvae_interpolation_gif_is_slerp_lerp_there_and_back(served):
    client = session(served)
    out = client.predict(DS, 0, None, 150, None, 2, 4, api_name="/hvae_interpolate")
    lerp, slerp = (strip_frames(p, 4, f"{m} z_2") for p, m in zip(out[:2], ("lerp", "slerp")))
    check_ping_pong(out[3], [slerp, lerp], STRIP_PIXEL)


def test_vdm_interpolation_gif_is_the_decoded_slerp_there_and_back(served):
    client = session(served)
    out = client.predict(DS, 0, None, 150, None, 3, 5, api_name="/vdm_interpolate")
    check_ping_pong(out[3], [strip_frames(out[0], 3, "slerp x_T")], PIXEL)


# ---------------------------------------------------------------- CSVs of the maps

def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == HEADER
        return list(reader)


def check_map_csv(root, figure, path, extras: dict[str, int]) -> None:
    """One row per gallery point, in gallery order, with its label and class name and the very
    coordinates the plot draws; then the marks and path points (`extras`: trace name -> number
    of points), index empty, label naming them ("A", "lerp path 3")."""
    with np.load(root / DS / "gallery.npz") as npz:
        labels, class_names = npz["labels"], [str(c) for c in npz["class_names"]]
    rows = read_csv(path)
    n = len(labels)
    assert len(rows) == n + sum(extras.values())
    points = rows[:n]
    assert [int(r["index"]) for r in points] == list(range(n))
    assert [int(r["label"]) for r in points] == labels.tolist()
    assert [r["class_name"] for r in points] == [class_names[c] for c in labels]
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    assert np.isfinite(xy).all()
    plotted = np.full((n, 2), np.nan)
    traces = plot_json(figure)["data"]
    for trace in traces:
        if "customdata" in trace:
            plotted[array(trace["customdata"]).astype(int)] = np.stack(
                [array(trace["x"]), array(trace["y"])], 1)
    np.testing.assert_allclose(xy[:n], plotted, rtol=1e-6)
    by_name = {t["name"]: t for t in traces}
    extra = rows[n:]
    assert all(r["index"] == "" and r["class_name"] == "" for r in extra)
    expected = [name if count == 1 else f"{name} {j}"
                for name, count in extras.items() for j in range(count)]
    assert [r["label"] for r in extra] == expected
    drawn = np.concatenate([np.stack([array(by_name[name]["x"]), array(by_name[name]["y"])], 1)
                            for name in extras]) if extras else np.zeros((0, 2))
    np.testing.assert_allclose(xy[n:], drawn, rtol=1e-6)


def test_vae_map_csv_lists_the_gallery_a_b_and_the_paths(served):
    client, (_, root) = session(served), served
    figure, path = client.predict(DS, "pca", 30, 0, None, 150, None, 6, api_name="/vae_project")
    check_map_csv(root, figure, path, {"A": 1, "B": 1, "lerp path": 6, "slerp path": 6})
    figure, path = client.predict(DS, "pca", 30, 0, None, None, None, 6, api_name="/vae_project")
    check_map_csv(root, figure, path, {"A": 1})                   # only A chosen: no path


def test_hvae_map_csv_at_a_layer(served):
    client, (_, root) = session(served), served
    figure, path = client.predict(DS, 3, "pca", 30, 0, None, 150, None, 4,
                                  api_name="/hvae_project")
    check_map_csv(root, figure, path, {"A": 1, "B": 1, "lerp path": 4, "slerp path": 4})


@pytest.mark.parametrize("t", [0, 700])
def test_vdm_dissolve_csv_is_the_gallery_at_t(served, t):
    client, (_, root) = session(served), served
    figure, path = client.predict(DS, t, "cosine", api_name="/vdm_dissolve")
    check_map_csv(root, figure, path, {})
