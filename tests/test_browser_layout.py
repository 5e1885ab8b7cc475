"""The page's layout in Chromium at the widths it is used at (a lecture hall's 1440 and 1280 px,
a 400 px phone), and presenter mode: no sideways scroll, a gallery that fits its panel with
readable captions, tables whose numbers stay on one line, buttons that never cover a picture's
labels, panels that stack on a phone, and presenter mode enlarging every control and plot text.
Screenshots at each width go to artifacts/browser/ (look at them)."""

from __future__ import annotations

import pytest

from test_browser import ARTIFACTS, assert_no_errors, expect, open_page, served  # noqa: F401

WIDTHS = (1440, 1280, 400)
# the lines of text in each number cell of an ELBO table (a row: name, nats, bits/dim)
ONE_LINE = """() => [...document.querySelectorAll('#vae-terms td')]
    .filter((td, i) => i % 3 !== 0).map(td => { const r = document.createRange();
        r.selectNodeContents(td);
        return new Set([...r.getClientRects()].map(q => Math.round(q.top))).size; })"""


def overlaps(a: dict, b: dict) -> bool:
    return not (a["right"] <= b["left"] or b["right"] <= a["left"] or
                a["bottom"] <= b["top"] or b["bottom"] <= a["top"])


def rect(page, selector: str) -> dict:
    return page.evaluate(f"""() => {{ const r = document.querySelector({selector!r})
        .getBoundingClientRect(); return {{left: r.left, right: r.right, top: r.top,
        bottom: r.bottom, width: r.width, height: r.height}}; }}""")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_fits_the_screen(served, width):
    browser, url, _ = served
    page = open_page(browser, url + "?dataset=fashion-mnist", width, 900)   # long class names
    expect(page.locator("#gallery .thumbnail-item").first).to_be_visible()
    expect(page.locator("#vae-terms table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width     # no sideways
    grid = page.evaluate("""() => { const g = document.querySelector('#gallery .grid-wrap');
        return [g.scrollWidth, g.clientWidth]; }""")
    assert grid[0] <= grid[1]                                    # the gallery fits its panel
    cut = page.evaluate("""() => [...document.querySelectorAll('#gallery .caption-label')]
        .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText)""")
    assert cut == []                                            # every caption readable
    # numbers in the ELBO table stay on one line
    lines = page.evaluate(ONE_LINE)
    assert lines and max(lines) == 1, lines
    # a picture's buttons never lie over its label, nor over a composed picture
    for slot in ("a", "b"):
        label = rect(page, f"#{slot} label, #{slot} [data-testid=block-label]")
        for button in page.locator(f"#{slot} button").all():
            box = button.bounding_box()
            if box:
                assert not overlaps(label, {"left": box["x"], "right": box["x"] + box["width"],
                                            "top": box["y"], "bottom": box["y"] + box["height"]})
    page.locator("#vae-lerp").scroll_into_view_if_needed()
    picture, bar = rect(page, "#vae-lerp img"), rect(page, "#vae-lerp .icon-button-wrapper")
    assert not overlaps(picture, bar)
    page.screenshot(path=ARTIFACTS / f"20_top_{width}.png")
    page.locator("#vae-terms").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"21_vae_{width}.png")
    page.get_by_role("tab", name="Hierarchical VAE").click()
    expect(page.locator("#hvae-terms table").first).to_be_visible()
    assert max(page.evaluate(ONE_LINE.replace("vae-terms", "hvae-terms"))) == 1
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    run = page.locator("#vdm-run-view")
    expect(run.locator(".le-caption")).to_contain_text("0 taken")
    run.locator("[data-act=step]").click()
    expect(run.locator(".le-caption")).to_contain_text("1 taken")
    for canvas in ("#vdm-run-view canvas.le-panel", "#vdm-run-view canvas.le-film",
                   "#vdm-scrub canvas.le-curves"):
        assert rect(page, canvas)["right"] <= width                 # inside the screen
    panel = rect(page, "#vdm-run-view canvas.le-panel")
    if width <= 400:                                                # a phone: 2 x 2, readable
        assert panel["height"] > panel["width"] * 0.8
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert not page.locator("#vdm-scrub-gif").is_visible()          # no empty file placeholder
    page.locator("#vdm-scrub").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"22_vdm_scrub_{width}.png")
    run.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"23_vdm_run_{width}.png")
    page.get_by_role("tab", name="2-D playground").click()
    expect(page.locator("#toy-view canvas.le-toy-data")).to_be_visible()
    page.wait_for_function("() => window.latentExplorer?.toy?.state?.key")
    for canvas in ("le-toy-data", "le-toy-loss", "le-toy-learned", "le-toy-exact", "le-toy-gap"):
        assert rect(page, f"#toy-view canvas.{canvas}")["right"] <= width
    for canvas in ("le-paths-ddpm", "le-paths-ddim"):
        assert rect(page, f"#toy-paths-view canvas.{canvas}")["right"] <= width
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator("#toy-view").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"26_playground_{width}.png")
    assert_no_errors(page)
    page.close()


def test_presenter_mode_enlarges_every_control_and_plot_text(served):
    browser, url, _ = served
    page = open_page(browser, url, 1440, 900)
    expect(page.locator("#vae-posterior .js-plotly-plot .xtick text").first).to_be_attached()
    size = lambda sel: page.evaluate(f"""() => parseFloat(getComputedStyle(
        document.querySelector({sel!r})).fontSize)""")
    probes = ["#vae-method label span", "#vae-compute", "#scenes .label-wrap span",
              "[role=tab]", "#vae-posterior .js-plotly-plot .xtick text", ".le-presenter"]
    before = {sel: size(sel) for sel in probes}
    page.locator("h1").first.click()
    page.keyboard.press("p")
    expect(page.locator("body.presenter")).to_have_count(1)
    page.wait_for_timeout(600)                         # Gradio's buttons ease into new sizes
    after = {sel: size(sel) for sel in probes}
    small = [sel for sel in probes if not after[sel] > before[sel]]
    assert small == [], (before, after)
    page.screenshot(path=ARTIFACTS / "24_presenter_1440.png")
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    run = page.locator("#vdm-run-view")
    expect(run.locator(".le-caption")).to_contain_text("0 taken")
    run.scroll_into_view_if_needed()
    assert size("#vdm-run-view [data-act=step]") >= 20
    page.screenshot(path=ARTIFACTS / "25_presenter_run_1440.png")
    page.keyboard.press("p")
    expect(page.locator("body.presenter")).to_have_count(0)
    assert_no_errors(page)
    page.close()
