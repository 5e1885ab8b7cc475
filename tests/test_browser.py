"""The app in a real browser: headless Debian Chromium driven by Playwright (no browser download).

One tour of the page on tiny untrained models: each tab opens; images are picked from the gallery,
a map, an upload and a drawing; an interpolation, a t-SNE projection and a layer resample run; on
the VDM tab the t slider moves the image, reverse steps are taken, a streamed run is stopped, the
run is rewound and branched, and an interpolation runs; a dataset without a 2-D VAE shows the
missing file in the page; a bad index shows a clear error
toast and the app keeps serving. No other error may appear. Screenshots go to artifacts/browser/.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
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
def page(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.page_errors = []
        page.on("pageerror", lambda e: page.page_errors.append(str(e)))
        page.set_default_timeout(WAIT)
        page.goto(url)
        page.locator("#dataset label").filter(has_text=re.compile(r"^\s*mnist\s*$")).click()
        expect(page.locator("#vae-b-index input")).to_have_value("100")
        yield page
        browser.close()
    close_app(app)


# ---------------------------------------------------------------- helpers

def error_toasts(page) -> list[str]:
    toasts = page.locator('[data-testid="toast-body"].error [data-testid="toast-text"]')
    return toasts.all_inner_texts()


def assert_no_errors(page) -> None:
    assert error_toasts(page) == [] and page.page_errors == []


def src(page, elem_id: str) -> str | None:
    return page.locator(f"#{elem_id} img").first.get_attribute("src")


def wait_new(page, elem_id: str, old: str | None) -> None:
    """Wait until the image of #elem_id is shown and differs from `old`."""
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


def click_map_point(page, elem_id: str) -> int:
    """Click the gallery point farthest to the right on plot #elem_id; returns its index."""
    page.locator(f"#{elem_id} .js-plotly-plot").scroll_into_view_if_needed()
    index, x, y = page.evaluate("""(id) => {
        const gd = document.querySelector(`#${id} .js-plotly-plot`);
        let best = null;
        for (const tr of gd._fullData) {
            if (tr.type !== "scattergl") continue;
            for (let i = 0; i < tr.x.length; i++)
                if (best === null || tr.x[i] > best[1]) best = [tr.customdata[i], tr.x[i], tr.y[i]];
        }
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.getBoundingClientRect();
        return [best[0], r.left + xa._offset + xa.l2p(best[1]),
                r.top + ya._offset + ya.l2p(best[2])];
    }""", elem_id)
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    return int(index)


# ---------------------------------------------------------------- the tour

def test_vae_tab(page, tmp_path):
    expect(page.locator("#vae-recon img")).to_be_visible()
    expect(page.locator("#vae-map .js-plotly-plot")).to_be_visible()
    assert number(page, "vae-a-index") == "0"
    shot(page, "01_vae_tab_loaded", full=True)

    # pick A from the gallery (thumbnail 3 is gallery image 3), then B (thumbnail 20)
    old = src(page, "vae-recon")
    page.locator("#vae-gallery .thumbnail-item").nth(3).click()
    expect(page.locator("#vae-a-index input")).to_have_value("3")
    wait_new(page, "vae-recon", old)
    page.locator("#vae-target label", has_text="B").click()
    old_lerp = src(page, "vae-lerp")
    page.locator("#vae-gallery .thumbnail-item").nth(20).click()
    expect(page.locator("#vae-b-index input")).not_to_have_value("100")
    wait_new(page, "vae-lerp", old_lerp)

    # an interpolation with 5 frames
    old_lerp = src(page, "vae-lerp")
    set_slider(page, "vae-frames", 5)
    wait_new(page, "vae-lerp", old_lerp)
    wait_new(page, "vae-slerp", None)
    shot(page, "02_vae_interpolation", "vae-lerp")

    # a t-SNE projection (perplexity 10), with progress, then a click on one of its points
    set_slider(page, "vae-perplexity", 10)
    page.locator("#vae-method label", has_text="t-SNE").click()
    expect(page.locator("#vae-map .gtitle")).to_contain_text("t-SNE", timeout=90_000)
    page.locator("#vae-target label", has_text="A").click()
    index = click_map_point(page, "vae-map")
    expect(page.locator("#vae-a-index input")).to_have_value(str(index))
    expect(page.locator("#vae-hovered img")).to_be_visible()
    # the new A is placed on the t-SNE map (embedded with transform) before we switch maps
    expect(page.locator("#vae-map .legendtext[data-unformatted='A']")).to_be_visible()
    page.wait_for_timeout(500)
    shot(page, "03_vae_tsne_map", "vae-map")

    # back to PCA: the A-B paths are drawn
    page.locator("#vae-method label", has_text="PCA").click()
    expect(page.locator("#vae-map .gtitle")).to_contain_text("PCA")
    expect(page.locator("#vae-map .legendtext[data-unformatted='lerp path']")).to_be_visible()

    # upload an RGBA picture of another size, then draw one
    page.get_by_text("Your own image: upload any picture or draw one").first.click()
    picture = np.zeros((120, 90, 4), np.uint8)
    picture[30:90, 40:50] = (0, 0, 0, 255)                   # a black bar on transparency
    Image.fromarray(picture, "RGBA").save(tmp_path / "bar.png")
    old = src(page, "vae-a")
    page.locator("#vae-upload input[type=file]").set_input_files(tmp_path / "bar.png")
    wait_new(page, "vae-a", old)
    expect(page.locator("#vae-a-index input")).to_have_value("")
    old = src(page, "vae-a")
    page.locator("#vae-sketch button[aria-label=Brush]").click()
    canvas = page.locator("#vae-sketch canvas").last.bounding_box()
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    page.mouse.move(cx - 40, cy - 60)
    page.mouse.down()
    for step in range(1, 13):
        page.mouse.move(cx - 40 + 7 * step, cy - 60 + 10 * step)
    page.mouse.up()
    page.locator("#vae-use-sketch").click()
    wait_new(page, "vae-a", old)
    assert_no_errors(page)
    shot(page, "04_vae_drawing_as_a")


def test_hvae_tab(page):
    page.get_by_role("tab", name="Hierarchical VAE").click()
    expect(page.locator("#hvae-recon img")).to_be_visible()
    old = src(page, "hvae-resampled")
    page.locator("#hvae-gallery .thumbnail-item").nth(7).click()
    expect(page.locator("#hvae-a-index input")).to_have_value("101")   # 6 per class
    wait_new(page, "hvae-resampled", old)

    # resample layer 2, and once more with the button at another temperature
    old = src(page, "hvae-resampled")
    set_slider(page, "hvae-res-layer", 2)
    wait_new(page, "hvae-resampled", old)
    page.locator("#hvae-resample").click()
    shot(page, "05_hvae_resample", "hvae-resampled")

    # interpolation at layer 2 and the map of layer 2
    old = src(page, "hvae-lerp")
    set_slider(page, "hvae-itp-layer", 2)
    wait_new(page, "hvae-lerp", old)
    set_slider(page, "hvae-map-layer", 2)
    expect(page.locator("#hvae-map .gtitle")).to_contain_text("z_2")
    expect(page.locator("#hvae-ancestral img")).to_be_visible()
    assert_no_errors(page)
    shot(page, "06_hvae_tab", full=True)


def step_text(page) -> str:
    return page.locator("#vdm-step-text").inner_text()


def taken(page) -> int:
    return int(re.search(r"(\d+) taken", step_text(page)).group(1))


def settled(page, every_ms: int = 700, limit_s: float = 60) -> int:
    """The number of steps taken, once two reads `every_ms` apart agree."""
    before = taken(page)
    for _ in range(int(limit_s * 1000 / every_ms)):
        page.wait_for_timeout(every_ms)
        now = taken(page)
        if now == before:
            return now
        before = now
    raise AssertionError(f"the run did not stop: still at {before} after {limit_s} s")


def data_url_pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"))


def served_pixels(page, url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.request.get(url).body())).convert("L"))


def check_scrub_painted_in_the_page(page) -> None:
    """The page paints x_t itself as the slider moves (ui/scrub_paint.py): the same pixels and
    histogram as the server's reply for that t, and after a fast drag the last t stays shown,
    whatever order the server's replies land in."""
    expect(page.locator("#vdm-xt img")).to_have_attribute("src", re.compile(r"x_t-0900-"))
    ours = page.evaluate("window.latentExplorerScrub(900)")
    assert np.array_equal(data_url_pixels(ours["picture"]), served_pixels(page, src(page, "vdm-xt")))
    bars = page.evaluate("document.querySelector('#vdm-hist .js-plotly-plot').data[0].y")
    assert np.allclose(ours["histogram"], list(bars), atol=2e-4)

    # a drag: ten moves in one go; the page shows each at once, and the last one stays
    page.evaluate("""() => {
      const range = document.querySelector('#vdm-t input[type=range]');
      const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
      for (let t = 100; t <= 1000; t += 100) {
        set.call(range, String(t));
        range.dispatchEvent(new Event('input', {bubbles: true}));
        range.dispatchEvent(new Event('change', {bubbles: true}));
      }
    }""")
    painted = page.locator("#vdm-xt img")
    assert page.evaluate("document.querySelector('#vdm-xt img').src").startswith("data:image/png")
    expect(painted).to_have_attribute("src", re.compile(r"x_t-1000-"))    # the server's, last
    expect(page.locator("#vdm-hist .gtitle")).to_contain_text("t = 1000")
    page.wait_for_timeout(1500)                                 # no late reply paints over it
    expect(painted).to_have_attribute("src", re.compile(r"x_t-1000-"))
    assert np.array_equal(data_url_pixels(page.evaluate("window.latentExplorerScrub(1000)")["picture"]),
                          served_pixels(page, src(page, "vdm-xt")))

    # a t typed in the slider's number box is painted within two frames, not the old t
    typed = page.evaluate("""async () => {
      const box = document.querySelector('#vdm-t input[type=number]');
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(box, '450');
      box.dispatchEvent(new Event('input', {bubbles: true}));
      await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
      return document.querySelector('#vdm-xt img').dataset.scrubT;
    }""")
    assert typed == "450"
    set_slider(page, "vdm-t", 900)
    expect(painted).to_have_attribute("src", re.compile(r"x_t-0900-"))


def test_vdm_tab(page):
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    expect(page.locator("#vdm-xt img")).to_be_visible()
    expect(page.locator("#vdm-panel img")).to_be_visible()
    expect(page.locator("#vdm-step-text")).to_contain_text("0 taken")

    # the t slider: the image and the cursor follow it
    old = src(page, "vdm-xt")
    set_slider(page, "vdm-t", 900)
    wait_new(page, "vdm-xt", old)
    expect(page.locator("#vdm-hist .gtitle")).to_contain_text("t = 900")
    expect(page.locator("#vdm-curves .gtitle")).to_contain_text("t = 900")
    shot(page, "07_vdm_forward", "vdm-xt")
    check_scrub_painted_in_the_page(page)

    # the scrub's GIF, for slides; a new eps makes it stale, so it goes
    page.locator("#vdm-scrub-gif-btn").click()
    expect(page.locator("#vdm-scrub-gif")).to_contain_text(".gif")
    page.locator("#vdm-noise-seed input").fill("5")
    page.locator("#vdm-noise-seed input").press("Enter")
    expect(page.locator("#vdm-scrub-gif")).not_to_contain_text(".gif")

    # three reverse steps, one click each
    for k in (1, 2, 3):
        old = src(page, "vdm-panel")
        page.locator("#vdm-step").click()
        expect(page.locator("#vdm-step-text")).to_contain_text(f"{k} taken")
        wait_new(page, "vdm-panel", old)
    shot(page, "08_vdm_three_steps", "vdm-panel")
    # the plot under the run follows it: three steps taken, the star at the run's t
    t_now = page.locator("#vdm-step-text").inner_text().split("(t = ")[1].split(")")[0]
    expect(page.locator("#vdm-steps-plot .gtitle")).to_contain_text(f"3 taken, now t = {t_now}")
    stars = page.evaluate("document.querySelector('#vdm-steps-plot .js-plotly-plot').data[3].x")
    assert stars == [int(t_now)]
    shot(page, "08_vdm_steps_plot", "vdm-steps-plot")
    # the spacing: even in t starts a new run over other timesteps, and back
    expect(page.locator("#vdm-step-text")).to_contain_text("steps spaced by Karras' ρ")
    page.locator("#vdm-spacing label", has_text="even in t").click()
    expect(page.locator("#vdm-step-text")).to_contain_text("steps evenly in t")
    expect(page.locator("#vdm-step-text")).to_contain_text("0 taken")
    expect(page.locator("#vdm-steps-plot .gtitle")).to_contain_text("evenly in t: 0 taken")
    page.locator("#vdm-spacing label", has_text="Karras").click()
    expect(page.locator("#vdm-step-text")).to_contain_text("steps spaced by Karras' ρ")

    # a DDPM run of 1000 steps, stopped part way: the steps taken stay, no more are taken
    page.locator("#vdm-sampler label", has_text="ddpm").click()
    expect(page.locator("#vdm-step-text")).to_contain_text("DDPM")
    # (a number typed in the box, no Enter: the page sends it once typing rests)
    page.locator("#vdm-steps input[type=number]").fill("1000")
    expect(page.locator("#vdm-step-text")).to_contain_text("1000 steps: 0 taken")
    # Stop is pressed in the page as soon as the first streamed frame shows: the tiny test
    # model takes all 1000 steps in well under a second
    page.locator("#vdm-steps input[type=number]").blur()
    page.evaluate("""() => new Promise((done) => {
      document.querySelector('#vdm-run').click();
      const poll = () => {
        const m = /(\\d+) taken/.exec(document.querySelector('#vdm-step-text').innerText);
        if (m && +m[1] > 0) { document.querySelector('#vdm-stop').click(); done(); }
        else requestAnimationFrame(poll);
      };
      poll();
    })""")
    stopped = settled(page)                                  # the step under way may finish
    page.wait_for_timeout(2000)
    assert 0 < stopped < 1000 and taken(page) == stopped     # and then no step is taken
    shot(page, "09_vdm_stopped", "vdm-film")

    # rewind to step 2, then branch there with another seed
    page.locator("#vdm-shown input[type=range]").fill("2")
    expect(page.locator("#vdm-step-text")).to_contain_text(f"2 taken (t = ")
    page.locator("#vdm-rewind").click()
    expect(page.locator("#vdm-step-text")).not_to_contain_text(f"of {stopped}")
    page.locator("#vdm-branch-seed input").fill("5")
    page.locator("#vdm-branch").click()
    expect(page.locator("#vdm-step-text")).to_contain_text("3 taken")
    expect(page.locator("#vdm-step-text")).to_contain_text("branches at steps [2]")
    # the steps box losing focus fires the slider's release again: same settings, no reset
    page.locator("#vdm-steps input[type=number]").focus()
    page.locator("#vdm-step-text").click()
    page.wait_for_timeout(1000)
    expect(page.locator("#vdm-step-text")).to_contain_text("3 taken")

    # an interpolation through x_T, and the gallery dissolving
    page.locator("#vdm-itp-steps input[type=number]").fill("10")
    page.locator("#vdm-itp-steps input[type=number]").press("Enter")
    page.locator("#vdm-interpolate").click()
    expect(page.locator("#vdm-slerp img")).to_be_visible()
    expect(page.locator("#vdm-fade img")).to_be_visible()
    set_slider(page, "vdm-dissolve-t", 800)
    expect(page.locator("#vdm-dissolve .gtitle")).to_contain_text("t = 800")
    assert_no_errors(page)
    shot(page, "10_vdm_tab", full=True)


def test_missing_model_is_named_in_the_page(page):
    page.get_by_role("tab", name="VAE", exact=True).click()
    page.locator("#dataset label", has_text="fashion-mnist").click()
    expect(page.locator("#vae-banner")).to_contain_text("vae2d.json")
    expect(page.locator("#vae2d-note")).to_contain_text("latent_dim=2")
    expect(page.locator("#vae-gallery .thumbnail-item").first).to_be_visible()
    expect(page.locator("#vae-b-index input")).to_have_value("200")   # first Trouser
    # "About the model" follows the dataset: the VAE's record, not the missing 2-D VAE's
    page.locator("#vae-about").get_by_text("About the model").click()
    expect(page.locator("#vae-cards")).to_contain_text("The VAE (fashion-mnist)")
    expect(page.locator("#vae-cards")).not_to_contain_text("2-D VAE")
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    page.locator("#vdm-about").get_by_text("About the model").click()
    expect(page.locator("#vdm-cards")).to_contain_text("(fashion-mnist)")
    expect(page.locator("#vdm-cards")).to_contain_text("fitted to q(x_T) (mean and rank-8")
    assert_no_errors(page)
    shot(page, "11_fashion_without_2d_vae")


def test_bad_input_is_a_clear_toast_and_the_app_keeps_serving(page):
    page.get_by_role("tab", name="VAE", exact=True).click()
    box = page.locator("#vae-a-index input")
    box.scroll_into_view_if_needed()
    box.fill("99999")
    box.press("Enter")
    toast = page.locator('[data-testid="toast-body"].error [data-testid="toast-text"]')
    expect(toast.first).to_contain_text("out of range")
    assert "Traceback" not in " ".join(error_toasts(page))
    page.wait_for_timeout(1000)                              # the toast slides in
    page.screenshot(path=ARTIFACTS / "12_error_toast.png")
    page.locator('[data-testid="toast-close"]').first.click()
    old = src(page, "vae-recon")
    page.locator("#vae-gallery .thumbnail-item").nth(1).click()
    wait_new(page, "vae-recon", old)
    assert page.page_errors == []
