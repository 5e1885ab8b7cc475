"""The latent walk in Chromium (ui/static/views/walk.js), VAE and HVAE tabs, on test_browser's
app (tiny untrained models and their ONNX graphs): a mouse drag of w repaints the walk with no
request to the server, the page's decoded frames are torch's decoder on the server's path (float
output within 1e-4, the painted pixels within one level of the server's `frames`), and with
?compute=server the server decodes and the page says so. Screenshots at 1440 and 400 px go to
artifacts/browser/ (look at them)."""

from __future__ import annotations

import numpy as np
import torch

from test_browser import (ARTIFACTS, assert_no_errors, expect, joined_events,  # noqa: F401
                          open_page, served)

TOLERANCE = 1e-4                                  # float32 graph vs torch
SERVER_CALLS = ("/component_server", "/queue/join")


def hook(kind: str) -> str:
    return f"window.latentExplorer.walk.{kind}"


def wait_ready(page, kind: str, in_page: bool, layer: int | None = None) -> None:
    """Until the walk holds its ends (at `layer`) and the stop shown is decoded."""
    page.wait_for_function(f"""() => {{ const w = window.latentExplorer?.walk?.{kind};
        return w && w.state.data && w.state.data.dataset === 'mnist'
            && w.state.data.layer === {layer or 'null'} && w.inPage() === {str(in_page).lower()}
            && w.state.frames.has(w.state.k); }}""")


def drag(page, kind: str) -> int:
    """Drag w with the mouse from A's end to B's; the stop it ends on."""
    slider = page.locator(f"#{kind}-walk input.le-w")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    for i in range(1, 25):
        page.mouse.move(box["x"] + 2 + (box["width"] * 0.8 - 2) * i / 24, y)
        page.wait_for_timeout(15)
    page.mouse.up()
    return page.evaluate(f"{hook(kind)}.state.k")


def decoder(kind: str, layer: int | None):
    """torch's decoder of the walk: mean p(x|z) (the HVAE's at `layer`, the rest prior means)."""
    from ui.hvae.views import decode_at
    from ui.store import STORE
    model = STORE.model("mnist", kind)
    if kind == "vae":
        return model.decode_mean
    shape = tuple(model.config.latent_shapes[layer - 1])
    return lambda z: decode_at(model, layer - 1, z.reshape(-1, *shape))


def server_frames(kind: str, ends: dict, k: int, layer: int | None) -> dict:
    """The view's server function, called here as the page calls it."""
    import base64

    from ui.hvae import walk as hvae_walk
    from ui.vae import walk as vae_walk
    b64 = {n: base64.b64encode(np.float32(ends[n]).tobytes()).decode() for n in ("za", "zb")}
    reply = (vae_walk if kind == "vae" else hvae_walk).frames(
        {"dataset": "mnist", "layer": layer, "k": k, **b64})
    return {m: np.frombuffer(base64.b64decode(reply[m]), np.uint8) for m in ("lerp", "slerp")}


def check_parity(page, kind: str, layer: int | None) -> None:
    """The frames shown at the stop reached: the page's latents are the server's path, its
    float output torch's decoder on them, and what it painted the server's frames."""
    from ui.vae.walk import path_latents
    k = page.evaluate(f"{hook(kind)}.state.k")
    frame = page.evaluate(f"{hook(kind)}.frame({k})")
    ends = page.evaluate(f"{hook(kind)}.ends()")
    za, zb = (torch.tensor(ends[n]) for n in ("za", "zb"))
    expected = path_latents(za, zb, k)
    got = torch.tensor([frame["latents"]["lerp"], frame["latents"]["slerp"]])
    assert (got - expected).abs().max() <= 1e-6
    with torch.no_grad():
        x = decoder(kind, layer)(expected).numpy().ravel()
    assert x.std() > 1e-3                                          # not a blank picture
    assert np.abs(np.float32(frame["x"]) - x).max() <= TOLERANCE
    cells = page.evaluate(f"{hook(kind)}.cells()")                 # A, lerp, slerp, pixels, B
    server = server_frames(kind, ends, k, layer)
    for i, m in ((1, "lerp"), (2, "slerp")):
        assert np.abs(np.int16(cells[i]) - server[m]).max() <= 1, m


def walk_requests(page, requests) -> list[str]:
    """What the walks asked of the server among `requests` ((url, body) pairs): their server
    function calls and their own events (the page's other events may still be running)."""
    joined = joined_events(page, [body for url, body in requests if "/queue/join" in url])
    return ([url for url, _ in requests if "/component_server" in url]
            + [name for name in joined if name.endswith("_walk_view")])


def test_the_walk_decodes_in_the_page_as_the_server_would(served):
    browser, url, _ = served
    page = open_page(browser, url + "?dataset=mnist&a=3&b=140")
    asked = []
    page.on("request", lambda r: asked.append((r.url, r.post_data))
            if any(s in r.url for s in SERVER_CALLS) else None)
    wait_ready(page, "vae", in_page=True)
    status = page.locator("#vae-walk .le-status")
    expect(status).to_have_text("decoding in this browser (VAE decoder, WebAssembly in a worker)")
    asked.clear()
    k = drag(page, "vae")
    page.wait_for_function(f"{hook('vae')}.state.frames.has({k})")
    assert k > 60 and walk_requests(page, asked) == []            # none while dragging
    painted = page.evaluate(f"{hook('vae')}.state.painted.map((p) => p[1])")
    assert len(set(painted)) > 10                                  # repainted along the way
    check_parity(page, "vae", None)
    page.locator("#vae-walk").screenshot(path=ARTIFACTS / "60_walk_vae_1440.png")

    # the switch off: the server decodes the stop shown, and the page says so
    page.locator("#vae-walk .le-compute").click()
    wait_ready(page, "vae", in_page=False)
    expect(status).to_have_text("the switch is off: the server decodes each frame")
    check_server_painted(page, "vae", None)

    page.get_by_role("tab", name="Hierarchical VAE").click()
    layer = page.locator("#hvae-itp-layer input[type=range]")
    layer.fill("2")
    layer.dispatch_event("pointerup")
    wait_ready(page, "hvae", in_page=True, layer=2)
    asked.clear()
    k = drag(page, "hvae")
    page.wait_for_function(f"{hook('hvae')}.state.frames.has({k})")
    assert walk_requests(page, asked) == []
    check_parity(page, "hvae", 2)
    page.locator("#hvae-walk").screenshot(path=ARTIFACTS / "61_walk_hvae_1440.png")
    assert_no_errors(page)
    page.close()


def test_with_compute_server_the_server_decodes_and_the_page_says_so(served):
    browser, url, _ = served
    page = open_page(browser, url + "?dataset=mnist&a=3&b=140&compute=server", 400, 900)
    wait_ready(page, "vae", in_page=False)
    expect(page.locator("#vae-walk .le-status")).to_have_text(
        "?compute=server: the server decodes each frame")
    expect(page.locator("#vae-walk .le-compute-box")).not_to_be_checked()
    slider = page.locator("#vae-walk input.le-w")
    slider.focus()
    for _ in range(3):
        slider.press("ArrowRight")
    page.wait_for_function(f"""() => {{ const s = {hook('vae')}.state;
        return s.k === 53 && s.frames.has(53); }}""")
    assert page.evaluate(f"{hook('vae')}.state.requests") >= 2
    check_server_painted(page, "vae", None)
    page.locator("#vae-walk").scroll_into_view_if_needed()
    page.locator("#vae-walk").screenshot(path=ARTIFACTS / "62_walk_vae_server_400.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400

    page.get_by_role("tab", name="Hierarchical VAE").click()
    wait_ready(page, "hvae", in_page=False, layer=1)
    check_server_painted(page, "hvae", 1)
    page.locator("#hvae-walk").screenshot(path=ARTIFACTS / "63_walk_hvae_server_400.png")
    assert_no_errors(page)
    page.close()


def check_server_painted(page, kind: str, layer: int | None) -> None:
    """What the page painted at the stop shown is the server's frames, as they are: the frames
    asked again here, in the test's process, may differ by one grey level where a pixel's float
    lies on a rounding edge (torch's convolutions sum in another order on another number of
    threads), and nowhere by more."""
    k = page.evaluate(f"{hook(kind)}.state.k")
    cells = page.evaluate(f"{hook(kind)}.cells()")
    server = server_frames(kind, page.evaluate(f"{hook(kind)}.ends()"), k, layer)
    for cell, name in ((cells[1], "lerp"), (cells[2], "slerp")):
        apart = np.abs(np.int16(cell) - server[name])
        assert apart.max() <= 1 and (apart > 0).mean() < 0.01, (name, np.flatnonzero(apart))
