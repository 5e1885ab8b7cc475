"""The app in a real browser: headless Debian Chromium driven by Playwright (no browser download).

One tour of the page on tiny untrained models. The shared input panel: images picked from the
gallery, a map, an upload and a drawing (from the first stroke), bad pictures refused without
touching A and B, one A and B for every tab. Each tab: the VAE's views and a t-SNE map, the HVAE's
layers; on the VDM tab the scrub view paints x_t itself (the same pixels and histogram as the
server's PNG), the run view draws Step and Run from compact arrays (the same pixels as the
server's PNG), Stop freezes it at once and the server ends on the step shown, rewind and branch.
The layout at 1440, 1280 and 400 px, presenter mode. No error may appear. Screenshots go to
artifacts/browser/: look at them.
"""

from __future__ import annotations

import collections
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_env import REPO, build_pretrained, close_app, launch_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "artifacts" / "browser"
WAIT = 60_000                                         # ms; the CI machine may be busy

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); "
                "`apt-get install -y chromium`", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser, url, root
        browser.close()
    close_app(app)


def open_page(browser, url: str, width: int = 1440, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.page_errors = []
    page.on("pageerror", lambda e: page.page_errors.append(str(e)))
    page.on("console", lambda m: page.page_errors.append(m.text) if m.type == "error" else None)
    page.joins = []                                   # the events the page sent (diagnostics)
    page.on("request", lambda r: page.joins.append((time.monotonic(), r.post_data))
            if "/queue/join" in r.url else None)
    page.set_default_timeout(WAIT)
    page.goto(url)
    return page


def joined_events(page, bodies) -> list[str]:
    """The api names of the events whose /queue/join request bodies these are."""
    names = page.evaluate("() => Object.fromEntries(window.gradio_config.dependencies"
                          ".map((d) => [d.id, d.api_name || `#${d.id}`]))")
    return [names[str(json.loads(body)["fn_index"])] for body in bodies]


def recent_events(page, seconds: float = 30.0) -> dict[str, int]:
    """How often each event was sent in the last `seconds` (the api names the page fired)."""
    since = time.monotonic() - seconds
    return dict(collections.Counter(joined_events(page, [body for at, body in page.joins
                                                         if at >= since])))


@pytest.fixture(scope="module")
def page(served):
    browser, url, _ = served
    page = open_page(browser, url)
    page.locator("#dataset label").filter(has_text=re.compile(r"^\s*mnist\s*$")).click()
    expect(page.locator("#b-index input")).to_have_value("100")
    yield page
    page.close()


# ---------------------------------------------------------------- helpers

def error_toasts(page) -> list[str]:
    toasts = page.locator('[data-testid="toast-body"].error [data-testid="toast-text"]')
    return toasts.all_inner_texts()


def assert_no_errors(page) -> None:
    assert error_toasts(page) == [] and page.page_errors == []


def close_toasts(page) -> None:
    """Close every toast (by script: stacked toasts cover each other's close buttons)."""
    page.evaluate("""() => document.querySelectorAll('[data-testid="toast-close"]')
                              .forEach((button) => button.click())""")
    expect(page.locator('[data-testid="toast-close"]')).to_have_count(0)


def src(page, elem_id: str) -> str | None:
    return page.locator(f"#{elem_id} img").first.get_attribute("src")


def wait_new(page, elem_id: str, old: str | None) -> None:
    """Wait until the image of #elem_id is shown and differs from `old`."""
    page.locator(f"#{elem_id}").scroll_into_view_if_needed()    # images load lazily
    image = page.locator(f"#{elem_id} img").first
    expect(image).to_be_visible()
    if old is not None:
        expect(image).not_to_have_attribute("src", old)


def number(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input").input_value()


def set_slider(page, elem_id: str, value: int) -> None:
    page.locator(f"#{elem_id} input[type=range]").fill(str(value))


def shot(page, name: str, elem_id: str | None = None, full: bool = False) -> None:
    """Save a screenshot of an element, the top of the page, or (slow: seconds) the full page,
    scrolled through first because images load lazily."""
    if elem_id:
        page.locator(f"#{elem_id}").scroll_into_view_if_needed()
        page.locator(f"#{elem_id}").screenshot(path=ARTIFACTS / f"{name}.png")
        return
    if not full:
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=ARTIFACTS / f"{name}.png")
        return
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height, 700):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(100)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def map_point(page, elem_id: str) -> tuple[int, float, float]:
    """A gallery point of plot #elem_id that the mouse can reach (its index, x, y on screen):
    the one nearest the plot's centre among those with nothing of the plot's own (the mode bar,
    the legend) drawn over them. The layout of a t-SNE map differs between machines, so a point
    chosen by rank alone (say the rightmost) may lie under the mode bar on another one."""
    page.locator(f"#{elem_id} .js-plotly-plot").scroll_into_view_if_needed()
    # none while the map is covered (Gradio's pending veil over a map still being redrawn)
    found = eventually(lambda: page.evaluate("""(id) => {
        const gd = document.querySelector(`#${id} .js-plotly-plot`);
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.getBoundingClientRect();
        const cx = r.left + xa._offset + xa._length / 2, cy = r.top + ya._offset + ya._length / 2;
        let best = null;
        for (const tr of gd._fullData) {
            if (!tr.customdata || tr.mode !== "markers") continue;
            for (let i = 0; i < tr.x.length; i++) {
                const x = r.left + xa._offset + xa.l2p(tr.x[i]);
                const y = r.top + ya._offset + ya.l2p(tr.y[i]);
                const over = document.elementFromPoint(x, y);
                if (!over || !gd.contains(over) || over.closest(".modebar, .legend")) continue;
                const d = (x - cx) ** 2 + (y - cy) ** 2;
                if (best === null || d < best[3]) best = [tr.customdata[i], x, y, d];
            }
        }
        return best && best.slice(0, 3);
    }""", elem_id), timeout_s=90)
    if not found:
        page.screenshot(path=ARTIFACTS / f"failed_map_point_{elem_id}.png")
        over = page.evaluate("""(id) => {
            const gd = document.querySelector(`#${id} .js-plotly-plot`);
            const r = gd.getBoundingClientRect();
            const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return [JSON.stringify(r), e && e.outerHTML.slice(0, 300),
                    gd._fullData.map((t) => [t.mode, t.type, !!t.customdata, t.x && t.x.length])];
        }""", elem_id)
        raise AssertionError(f"no point of #{elem_id} can be reached by the mouse: {over}; "
                             f"events of the last 30 s: {recent_events(page)}")
    return tuple(found)


def hover(page, x: float, y: float, shown: str) -> None:
    """Hover (x, y) until #shown is visible: the page binds a map's hover a moment after the
    map is drawn, and a hover made before that is not seen again until the mouse moves."""
    for _ in range(20):
        page.mouse.move(x - 40, y - 40)
        page.mouse.move(x, y, steps=4)
        try:
            expect(page.locator(shown)).to_be_visible(timeout=3000)
            return
        except AssertionError:
            continue
    expect(page.locator(shown)).to_be_visible()


def eventually(check, timeout_s: float = 60.0, every_s: float = 0.5):
    """check() until it returns a true value (returned) or timeout_s passes (the last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def served_pixels(page, url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.request.get(url).body())).convert("L"))


def file_url(page, elem_id: str) -> str:
    """The URL of the file a gr.File output shows, once it shows one."""
    link = page.locator(f"#{elem_id} a").first
    expect(link).to_be_visible()
    return link.get_attribute("href")


def slot_errors(page) -> int:
    """Components of the input panel marked as failed by Gradio (the red "Error" badge)."""
    return page.locator("#panel .error, #a .error, #b .error").count()


def open_own_image(page) -> None:
    """Open the panel's "Your own image" accordion unless it is open (each test may start
    from where the one before stopped)."""
    if not page.locator("#sketch").is_visible():
        page.get_by_text("Your own image: upload any picture or draw one").first.click()
    expect(page.locator("#sketch")).to_be_visible()


def draw_stroke(page, selector: str) -> None:
    canvas = page.locator(selector).last.bounding_box()
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    page.mouse.move(cx - 40, cy - 60)
    page.mouse.down()
    for step in range(1, 13):
        page.mouse.move(cx - 40 + 7 * step, cy - 60 + 10 * step)
    page.mouse.up()


# ---------------------------------------------------------------- the shared input panel and VAE

def test_vae_tab_and_the_panel(page, tmp_path):
    expect(page.locator("#vae-recon img")).to_be_visible()
    expect(page.locator("#vae-map .js-plotly-plot")).to_be_visible()
    assert number(page, "a-index") == "0"
    shot(page, "01_vae_tab_loaded", full=True)

    # pick A from the gallery (thumbnail 3 is gallery image 3), then B (thumbnail 20)
    old = src(page, "vae-recon")
    page.locator("#gallery .thumbnail-item").nth(3).click()
    expect(page.locator("#a-index input")).to_have_value("3")
    wait_new(page, "vae-recon", old)
    page.locator("#target label", has_text="B").click()
    old_lerp = src(page, "vae-lerp")
    page.locator("#gallery .thumbnail-item").nth(20).click()
    expect(page.locator("#b-index input")).not_to_have_value("100")
    wait_new(page, "vae-lerp", old_lerp)

    # an interpolation with 5 frames
    old_lerp = src(page, "vae-lerp")
    set_slider(page, "vae-frames", 5)
    wait_new(page, "vae-lerp", old_lerp)
    shot(page, "02_vae_interpolation", "vae-lerp")

    # a t-SNE projection (perplexity 10), then a hover and a click on one of its points: the
    # page view sends them (no hidden textboxes)
    set_slider(page, "vae-perplexity", 10)
    page.locator("#vae-method label", has_text="t-SNE").click()
    expect(page.locator("#vae-map .gtitle")).to_contain_text("t-SNE", timeout=90_000)
    page.locator("#target label", has_text="A").click()
    index, x, y = map_point(page, "vae-map")
    hover(page, x, y, "#vae-hovered img")
    page.mouse.click(x, y)                  # (another point may lie on top of it: any point)
    expect(page.locator("#a-index input")).not_to_have_value("3")
    assert int(number(page, "a-index")) >= 0
    expect(page.locator("#vae-map .legendtext[data-unformatted='A']")).to_be_visible()
    page.wait_for_timeout(500)
    shot(page, "03_vae_tsne_map", "vae-map")
    page.locator("#vae-method label", has_text="PCA").click()
    expect(page.locator("#vae-map .gtitle")).to_contain_text("PCA")
    expect(page.locator("#vae-map .legendtext[data-unformatted='lerp path']")).to_be_visible()

    # upload an RGBA picture of another size, then draw one: from the first stroke, no tool to
    # pick first
    open_own_image(page)
    picture = np.zeros((120, 90, 4), np.uint8)
    picture[30:90, 40:50] = (0, 0, 0, 255)                   # a black bar on transparency
    Image.fromarray(picture, "RGBA").save(tmp_path / "bar.png")
    old = src(page, "a")
    page.locator("#upload input[type=file]").set_input_files(tmp_path / "bar.png")
    wait_new(page, "a", old)
    expect(page.locator("#a-index input")).to_have_value("")
    old = src(page, "a")
    page.locator("#sketch").scroll_into_view_if_needed()
    page.wait_for_timeout(600)                               # the page picks the brush
    draw_stroke(page, "#sketch canvas")
    page.locator("#use-sketch").click()
    wait_new(page, "a", old)
    assert_no_errors(page)
    shot(page, "04_vae_drawing_as_a")


def test_bad_pictures_leave_a_and_b_alone(page, tmp_path):
    """A file that is not a picture, or the drawing when the pad is empty: a message, and A, B
    and their index boxes as they were (no failed badge on them)."""
    open_own_image(page)
    page.locator("#sketch button[aria-label='Clear canvas']").click()
    page.locator("#gallery .thumbnail-item").nth(5).click()
    expect(page.locator("#a-index input")).to_have_value("5")
    before = (src(page, "a"), src(page, "b"), number(page, "a-index"), number(page, "b-index"))
    (tmp_path / "notes.png").write_text("not a picture at all")
    page.locator("#upload input[type=file]").set_input_files(tmp_path / "notes.png")
    toast = page.locator('[data-testid="toast-body"] [data-testid="toast-text"]')
    expect(toast.first).to_contain_text("could not read 'notes.png'")
    page.wait_for_timeout(500)
    assert (src(page, "a"), src(page, "b"), number(page, "a-index"),
            number(page, "b-index")) == before
    assert slot_errors(page) == 0
    page.screenshot(path=ARTIFACTS / "05_bad_upload_leaves_the_slots.png")
    close_toasts(page)
    page.locator("#use-sketch").click()
    expect(toast.first).to_contain_text("drawing is empty")
    page.wait_for_timeout(500)
    assert (src(page, "a"), src(page, "b"), number(page, "a-index"),
            number(page, "b-index")) == before
    assert slot_errors(page) == 0
    close_toasts(page)
    assert error_toasts(page) == [] and page.page_errors == []


def test_hvae_tab_uses_the_same_a(page):
    vae_recon = src(page, "vae-recon")
    page.get_by_role("tab", name="Hierarchical VAE").click()
    expect(page.locator("#hvae-recon img")).to_be_visible()
    old = src(page, "hvae-resampled")
    page.locator("#gallery .thumbnail-item").nth(7).click()
    expect(page.locator("#a-index input")).to_have_value("101")       # 6 per class
    wait_new(page, "hvae-resampled", old)
    old = src(page, "hvae-resampled")
    set_slider(page, "hvae-res-layer", 2)
    wait_new(page, "hvae-resampled", old)
    old = src(page, "hvae-lerp")
    set_slider(page, "hvae-itp-layer", 2)
    wait_new(page, "hvae-lerp", old)
    set_slider(page, "hvae-map-layer", 2)
    expect(page.locator("#hvae-map .gtitle")).to_contain_text("z_2")
    expect(page.locator("#hvae-ancestral img")).to_be_visible()
    # the same A in the VAE tab: its encoder has redrawn for gallery image 101 meanwhile
    page.get_by_role("tab", name="VAE", exact=True).click()
    wait_new(page, "vae-recon", vae_recon)
    page.get_by_role("tab", name="Hierarchical VAE").click()
    assert_no_errors(page)
    shot(page, "06_hvae_tab", full=True)


# ---------------------------------------------------------------- the VDM tab

def test_the_scrub_is_painted_in_the_page(page):
    """The scrub view mixes x_t itself as t moves: the same pixels and histogram as the
    server's PNG at that t; the arrow keys move t by 10."""
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    scrub = page.locator("#vdm-scrub")
    expect(scrub.locator("canvas.le-xt")).to_be_visible()
    page.wait_for_function("window.latentExplorer && window.latentExplorer.scrub "
                           "&& window.latentExplorer.scrub.at(900) !== null")
    scrub.locator("input.le-t").fill("900")
    expect(scrub.locator(".le-xt-caption")).to_contain_text("t = 900")
    # the canvas shows what the view mixed (read together: the view's x_0 may still change
    # while the A picked last reaches it, on a busy machine)
    mixed_and_painted = """() => {
        const c = document.querySelector('#vdm-scrub canvas.le-xt');
        const ctx = c.getContext('2d'), r = c.width / 28, out = [];
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < 28; i++) for (let j = 0; j < 28; j++)
            out.push(data[4 * (Math.floor((i + 0.5) * r) * c.width + Math.floor((j + 0.5) * r))]);
        return [window.latentExplorer.scrub.at(900).pixels, out]; }"""
    assert eventually(lambda: (lambda o, p: o == p)(*page.evaluate(mixed_and_painted)))
    scrub.locator("[data-act=png]").click()                  # the server's picture at t
    served = served_pixels(page, file_url(page, "vdm-scrub-gif"))
    from ui.common import PIXEL, frame_gap
    gap = frame_gap(PIXEL)
    cells = served[gap:gap + 28 * PIXEL:PIXEL, gap:gap + 28 * PIXEL:PIXEL]
    ours = lambda: np.array(page.evaluate("window.latentExplorer.scrub.at(900)")["pixels"],  # noqa: E731
                            np.uint8).reshape(28, 28)
    assert eventually(lambda: np.array_equal(ours(), cells))   # the page paints what it serves
    shot(page, "07_vdm_scrub", "vdm-scrub")

    # a drag: ten moves in one go, each painted, the last one stays; then the keys
    page.evaluate("""() => { const r = document.querySelector('#vdm-scrub input.le-t');
        for (let t = 100; t <= 1000; t += 100) { r.value = String(t);
            r.dispatchEvent(new Event('input', {bubbles: true})); } }""")
    expect(scrub.locator(".le-xt-caption")).to_contain_text("t = 1000")
    page.locator("h1").first.click()                                     # focus off any field
    page.keyboard.press("ArrowLeft")
    expect(scrub.locator(".le-xt-caption")).to_contain_text("t = 990")
    # a new eps makes the last file stale: it goes
    page.locator("#vdm-noise-seed input").fill("5")
    page.locator("#vdm-noise-seed input").press("Enter")
    expect(page.locator("#vdm-scrub-gif")).to_be_hidden()
    assert_no_errors(page)


def run_caption(page) -> str:
    return page.locator("#vdm-run-view .le-caption").inner_text()


def taken(page) -> int:
    return int(re.search(r"(\d+) taken", run_caption(page)).group(1))


def test_the_run_is_drawn_from_arrays_and_matches_the_server_png(page):
    """Three steps taken by the page itself (its network in a worker: the switch is on where
    the browser can), drawn as the server's PNG of the same steps draws them."""
    page.get_by_role("tab", name="Diffusion (VDM)").click()       # also when run on its own
    run = page.locator("#vdm-run-view")
    run.scroll_into_view_if_needed()
    expect(run.locator(".le-caption")).to_contain_text("0 taken")
    expect(run.locator(".le-compute-box")).to_be_checked()
    assert page.evaluate("window.latentExplorer.run.inPage()")
    # its canvases handed to a worker that paints them (OffscreenCanvas)
    assert page.evaluate("window.latentExplorer.run.painter.kind") == "worker"
    for k in (1, 2, 3):
        run.locator("[data-act=step]").click()
        expect(run.locator(".le-caption")).to_contain_text(f"{k} taken")
    # taken by the page: one request (the plan) for the three, no step on the server
    assert page.evaluate("window.latentExplorer.run.engine.counts") == {"plans": 1, "steps": 3}
    expect(run.locator(".le-compute-box")).to_be_checked()
    shot(page, "08_vdm_three_steps", "vdm-run-view")
    painted = page.evaluate("window.latentExplorer.run.panelPixels()")
    run.locator("[data-act=png]").click()                          # the server's PNG of it
    served = served_pixels(page, file_url(page, "vdm-run-gif"))
    from ui.common import compose
    from ui.vdm.run import PANEL_LABELS, PANEL_PIXEL
    white = np.full((28, 28), 255, np.uint8)
    probe = compose([[white] * 4], PANEL_PIXEL, PANEL_LABELS["start"], font_size=20) == 255
    assert served.shape == probe.shape
    starts = [i for i in np.flatnonzero(probe.any(0)) if i == 0 or not probe.any(0)[i - 1]]
    y = int(np.flatnonzero(probe.any(1))[0])
    for x, ours in zip(starts, painted):
        cell = served[y:y + 28 * PANEL_PIXEL:PANEL_PIXEL, x:x + 28 * PANEL_PIXEL:PANEL_PIXEL]
        assert np.array_equal(np.array(ours, np.uint8).reshape(28, 28), cell)
    # the run as a GIF, from the view's toolbar: the server's copy of the page's run
    run.locator("[data-act=gif]").click()
    expect(page.locator("#vdm-run-gif a").first).to_have_attribute("href", re.compile(r"\.gif$"))
    # the spacing starts a new run over other timesteps
    page.locator("#vdm-spacing label", has_text="even in t").click()
    expect(run.locator(".le-caption")).to_contain_text("steps evenly in t")
    expect(run.locator(".le-caption")).to_contain_text("0 taken")
    expect(page.locator("#vdm-run-gif")).to_be_hidden()              # its file went with it
    page.locator("#vdm-spacing label", has_text="Karras").click()
    expect(run.locator(".le-caption")).to_contain_text("Karras")
    assert_no_errors(page)


def test_the_page_paints_the_run_itself_where_asked(served):
    """`?paint=page` (as a browser without OffscreenCanvas): the page paints the run's canvases
    itself, and what it paints is the run's pictures, as the worker paints them."""
    browser, url, _ = served
    painted = {}
    for paint in ("page", "worker"):
        page = open_page(browser, url + ("?paint=page" if paint == "page" else ""))
        page.get_by_role("tab", name="Diffusion (VDM)").click()
        run = page.locator("#vdm-run-view")
        expect(run.locator(".le-caption")).to_contain_text("0 taken")
        assert page.evaluate("window.latentExplorer.run.painter.kind") == paint
        for k in (1, 2):
            run.locator("[data-act=step]").click()
            expect(run.locator(".le-caption")).to_contain_text(f"{k} taken")
        page.wait_for_timeout(300)                        # the worker's frame is painted
        cells = page.evaluate("window.latentExplorer.run.cells()")
        painted[paint] = page.evaluate("window.latentExplorer.run.panelPixels()")
        assert painted[paint] == cells and all(c is not None for c in cells)
        shot(page, f"08_vdm_two_steps_painted_by_{paint}", "vdm-run-view")
        assert_no_errors(page)
        page.close()
    assert painted["page"] == painted["worker"]


def test_stop_freezes_the_run_on_the_frame_shown(page):
    """A 1000-step DDPM run computed by the server (the switch off), stopped once it is under
    way: nothing is drawn after the Stop click but the stop's reply (the same step), and the
    server's run ends on that step."""
    page.get_by_role("tab", name="Diffusion (VDM)").click()       # also when run on its own
    run = page.locator("#vdm-run-view")
    run.locator(".le-compute-box").uncheck()
    assert not page.evaluate("window.latentExplorer.run.inPage()")
    page.locator("#vdm-sampler label", has_text="ddpm").click()
    page.locator("#vdm-steps input[type=number]").fill("1000")
    page.locator("#vdm-steps input[type=number]").press("Enter")
    expect(run.locator(".le-caption")).to_contain_text("1000 steps · 0 taken")
    stopped = page.evaluate("""() => new Promise((done) => {
      const view = window.latentExplorer.run;
      const look = () => Object.fromEntries([...document.querySelectorAll('#vdm-run-view .le-btn')]
        .map((b) => [b.dataset.act, [b.disabled, getComputedStyle(b).opacity,
                                     getComputedStyle(b).backgroundColor]]));
      const before = look();
      view.actions.run();
      const poll = () => {
        if (view.state.drawnShown > 3) {                  // step 4 or later on screen
          const during = look(), t = performance.now();
          document.querySelector('#vdm-run-view [data-act=stop]').click();
          done({t, shown: view.state.shown, before, during});
        } else requestAnimationFrame(poll);
      };
      poll();
    })""")
    # a disabled button is faded by its colours, never by opacity (an opacity turned on and off
    # makes the browser rebuild the page's layers on the first frame of a run)
    before, during = stopped["before"], stopped["during"]
    assert before["stop"][0] and not before["run"][0] and during["run"][0] and not during["stop"][0]
    assert {look[1] for look in [*before.values(), *during.values()]} == {"1"}
    for act in ("run", "stop"):
        assert before[act][2] != during[act][2], (act, before[act], during[act])
    page.wait_for_timeout(2500)
    drawn = page.evaluate("window.latentExplorer.run.drawn")
    later = [k for t, k in drawn if t > stopped["t"]]
    assert set(later) <= {stopped["shown"]}                  # no other step drawn after Stop
    expect(run.locator(".le-caption")).to_contain_text(f"{stopped['shown']} taken")
    assert taken(page) == stopped["shown"] < 1000
    page.wait_for_timeout(1000)
    assert taken(page) == stopped["shown"]                   # and the run takes no step
    shot(page, "09_vdm_stopped", "vdm-run-view")

    # rewind to step 2, then branch there with another seed
    page.evaluate("""() => { const r = document.querySelector('#vdm-run-view input.le-shown');
        r.value = '2'; r.dispatchEvent(new Event('input', {bubbles: true})); }""")
    expect(run.locator(".le-caption")).to_contain_text("2 taken (t = ")
    run.locator("[data-act=rewind]").click()
    expect(run.locator(".le-caption")).not_to_contain_text(f"of {stopped['shown']}")
    run.locator("input.le-branch-seed").fill("5")
    run.locator("[data-act=branch]").click()
    expect(run.locator(".le-caption")).to_contain_text("3 taken")
    expect(run.locator(".le-caption")).to_contain_text("branches at steps 2")
    run.locator("[data-act=film]").click()
    expect(page.locator("#vdm-run-gif")).to_be_visible()
    assert_no_errors(page)


def test_the_rest_of_the_vdm_tab(page):
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    page.locator("#vdm-itp-steps input[type=number]").fill("10")
    page.locator("#vdm-itp-steps input[type=number]").press("Enter")
    expect(page.locator("#vdm-itp-gif")).to_be_hidden()             # no empty placeholder
    page.locator("#vdm-interpolate").click()
    expect(page.locator("#vdm-slerp img")).to_be_visible()
    expect(page.locator("#vdm-itp-gif")).to_be_visible()
    set_slider(page, "vdm-dissolve-t", 800)
    expect(page.locator("#vdm-dissolve .gtitle")).to_contain_text("t = 800")
    assert_no_errors(page)
    shot(page, "10_vdm_tab", full=True)


def test_missing_model_is_named_in_the_page(page):
    page.get_by_role("tab", name="VAE", exact=True).click()
    switched = time.monotonic()
    page.locator("#dataset label", has_text="fashion-mnist").click()
    expect(page.locator("#vae-banner")).to_contain_text("vae2d.json")
    expect(page.locator("#vae2d-note")).to_contain_text("latent_dim=2")
    expect(page.locator("#gallery .thumbnail-item").first).to_be_visible()
    expect(page.locator("#b-index input")).to_have_value("200")       # first Trouser
    page.locator("#vae-about").get_by_text("About the model").click()
    expect(page.locator("#vae-cards")).to_contain_text("The VAE (fashion-mnist)")
    expect(page.locator("#vae-cards")).not_to_contain_text("2-D VAE")
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    page.locator("#vdm-about").get_by_text("About the model").click()
    expect(page.locator("#vdm-cards")).to_contain_text("(fashion-mnist)")
    expect(page.locator("#vdm-cards")).to_contain_text("fitted to q(x_T) (mean and rank-8")
    assert_no_errors(page)
    shot(page, "11_fashion_without_2d_vae")
    # the views of the new A and B ran, and the page goes quiet: none runs again by itself
    # (a picture's change events re-ran them every few seconds here: ui/panel.py, InputPanel)
    quiet = eventually(lambda: page.wait_for_timeout(1000) or
                       time.monotonic() - max(at for at, _ in page.joins) > 10, timeout_s=90)
    sent = recent_events(page, time.monotonic() - switched)
    assert quiet and sent["vae_encode"] <= 2 and max(sent.values()) <= 3, sent


def test_bad_input_is_a_clear_toast_and_the_app_keeps_serving(page):
    page.get_by_role("tab", name="VAE", exact=True).click()
    box = page.locator("#a-index input")
    box.scroll_into_view_if_needed()
    box.fill("99999")
    box.press("Enter")
    toast = page.locator('[data-testid="toast-body"].error [data-testid="toast-text"]')
    expect(toast.first).to_contain_text("99999 is not valid; valid: a whole number in 0..")
    assert "Traceback" not in " ".join(error_toasts(page))
    page.wait_for_timeout(1000)                              # the toast slides in
    page.screenshot(path=ARTIFACTS / "12_error_toast.png")
    close_toasts(page)
    old = src(page, "vae-recon")
    page.locator("#gallery .thumbnail-item").nth(1).click()
    wait_new(page, "vae-recon", old)
    page.page_errors = [e for e in page.page_errors if "is not valid" not in e]
    assert page.page_errors == []
