"""The 2-D playground in a real browser (Debian Chromium, Playwright): a scene link opens it on
the spiral; Train streams the loss curve and the sample cloud into the page while training
(several redraws a second), Pause holds it; the t slider scrubs the forward process and the
field (the network's beside the exact one, their gap) follows; points drawn on the data plot
become the training set; trajectories are sampled, stepped, run and rewound in the page; the
downloads come back as files. No error may appear. Screenshots go to artifacts/browser/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from test_browser import WAIT, open_page, served  # noqa: F401  (served: the app and browser)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"


def toy(page, expression: str):
    return page.evaluate(f"() => {{ const s = window.latentExplorer.toy.state; return {expression}; }}")


def paths(page, expression: str):
    return page.evaluate(f"() => {{ const s = window.latentExplorer.toypaths.state; return {expression}; }}")


@pytest.mark.slow
def test_train_scrub_draw_and_trajectories(served):
    browser, url, _ = served
    page = open_page(browser, f"{url}?tab=playground&data=spiral")
    view = page.locator("#toy-view")
    expect(view.locator(".le-toy-data")).to_be_visible()
    expect(page.locator("#toy-data input[value=spiral]")).to_be_checked()
    page.wait_for_function("() => window.latentExplorer?.toy?.state?.key && "
                           "window.latentExplorer.toy.state.points?.length === 2000")

    # a short run: fewer iterations, a smaller batch (the CI machine is shared)
    page.locator("#toy-iterations input[type=number]").fill("1500")
    page.locator("#toy-iterations input[type=number]").press("Enter")
    page.locator("#toy-batch input[type=number]").fill("256")
    page.locator("#toy-batch input[type=number]").press("Enter")
    page.wait_for_timeout(1500)
    key_before = toy(page, "s.key")
    view.locator("[data-act=train]").click()
    page.wait_for_function("() => (window.latentExplorer.toy.state.history.iteration ?? []).length > 5",
                           timeout=WAIT)
    paints, follows, started = toy(page, "s.paints"), toy(page, "s.follows"), time.monotonic()
    page.wait_for_timeout(2000)
    rate = (toy(page, "s.follows") - follows) / (time.monotonic() - started)
    assert rate >= 2, f"only {rate:.1f} news a second while training"
    assert toy(page, "s.paints") > paints
    assert toy(page, "s.cloud !== null && s.cloud.length === 1024")
    assert toy(page, "Number.isFinite(s.floor) && s.floor > 0")
    view.locator("[data-act=pause]").click()
    expect(view.locator(".le-status")).to_contain_text("paused")
    iteration = toy(page, "s.summary.iteration")
    page.wait_for_timeout(800)
    assert toy(page, "s.summary.iteration") == iteration
    page.screenshot(path=str(ARTIFACTS / "playground-training.png"), full_page=False)

    # the forward process and the field at a scrubbed t
    slider = view.locator(".le-t")
    slider.fill("400")
    page.wait_for_function("() => window.latentExplorer.toy.state.field?.t === 400")
    assert toy(page, "s.field.learned.length === 2 * 25 * 25 && s.field.exact.length === 1250")
    assert toy(page, "s.field.mse.exact <= s.field.mse.learned + 0.05")
    expect(view.locator(".le-toy-t-readout")).to_contain_text("t = 400")
    view.locator(".le-toy-learned").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "playground-field.png"), full_page=False)

    # trajectories: sample, step, run, rewind
    pv = page.locator("#toy-paths-view")
    pv.locator(".le-n").fill("100")
    pv.locator(".le-steps-box").fill("50")
    pv.locator("[data-act=sample]").click()
    page.wait_for_function("() => window.latentExplorer.toypaths.state.runs !== null")
    assert paths(page, "Object.keys(s.runs).sort().join()") == \
        "ddim-exact,ddim-learned,ddpm-exact,ddpm-learned"
    pv.locator("[data-act=step]").click()
    assert paths(page, "s.k") == 1
    pv.locator("[data-act=run]").click()
    page.wait_for_function("() => window.latentExplorer.toypaths.state.k === 50")
    pv.locator(".le-shown").fill("10")
    assert paths(page, "s.k") == 10
    pv.scroll_into_view_if_needed()
    pv.locator(".le-shown").fill("50")
    page.screenshot(path=str(ARTIFACTS / "playground-trajectories.png"), full_page=False)
    pv.locator("[data-act=gif]").click()
    expect(page.locator("#toy-paths-file a").first).to_be_visible()

    # points drawn on the data plot become the training set (a new lab)
    view.locator(".le-toy-data").scroll_into_view_if_needed()
    view.locator(".le-draw-box").check()
    canvas = view.locator(".le-toy-data")
    box = canvas.bounding_box()
    for fx, fy in ((0.3, 0.3), (0.7, 0.3), (0.5, 0.7), (0.4, 0.5)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    assert toy(page, "s.drawn.length") == 4
    view.locator("[data-act=use]").click()
    page.wait_for_function(f"() => window.latentExplorer.toy.state.key !== {key_before!r} && "
                           "window.latentExplorer.toy.state.points.length === 8")
    expect(page.locator("#toy-data input[value=drawn]")).to_be_checked()
    assert paths(page, "s.runs") is None                  # the old model's runs are gone
    page.locator("#toy-training-gif-btn").click()         # nothing trained on the new points
    page.wait_for_timeout(1000)
    assert page.page_errors == [] or all("nothing trained" in e for e in page.page_errors), \
        page.page_errors
