"""Talk mode in a real browser (headless Debian Chromium via Playwright): a bookmarked scene is
what the page shows, and the keyboard drives the VDM tab. Screenshots go to artifacts/browser/."""

from __future__ import annotations

import numpy as np

from test_browser import (ARTIFACTS, assert_no_errors, expect, number, open_page,  # noqa: F401
                          served)


def first_of(root, dataset: str, class_name: str) -> int:
    with np.load(root / dataset / "gallery.npz") as npz:
        names = list(npz["class_names"])
        return int(np.flatnonzero(npz["labels"] == names.index(class_name))[0])


def checked_dataset(page) -> str:
    return page.locator("#dataset input:checked").get_attribute("value")


def test_a_3_turning_into_an_8(served):
    browser, url, root = served
    page = open_page(browser, url + "?preset=three-to-eight", 1600)
    expect(page.locator("#a-index input")).to_have_value(str(first_of(root, "mnist", "3")))
    expect(page.locator("#b-index input")).to_have_value(str(first_of(root, "mnist", "8")))
    assert checked_dataset(page) == "mnist"
    expect(page.get_by_role("tab", name="VAE", exact=True)).to_have_attribute("aria-selected",
                                                                              "true")
    page.locator("#vae-lerp").scroll_into_view_if_needed()
    expect(page.locator("#vae-lerp img")).to_be_visible()
    assert_no_errors(page)
    page.close()


def test_a_sneaker_dissolving_then_the_keyboard(served):
    """The scene opens on a moment worth seeing: the sneaker half dissolved (t = 450 on the
    cosine schedule: x_t still shows it), presenter mode on; then the keys drive the tab."""
    browser, url, root = served
    page = open_page(browser, url + "?preset=sneaker-dissolving&presenter=1", 1600)
    sneaker = str(first_of(root, "fashion-mnist", "Sneaker"))
    expect(page.get_by_role("tab", name="Diffusion (VDM)")).to_have_attribute("aria-selected",
                                                                              "true")
    expect(page.locator("#a-index input")).to_have_value(sneaker)
    assert checked_dataset(page) == "fashion-mnist"
    expect(page.locator("body.presenter")).to_have_count(1)
    scrub = page.locator("#vdm-scrub")
    expect(scrub.locator(".le-xt-caption")).to_contain_text("t = 450")
    expect(scrub.locator("input.le-t-box")).to_have_value("450")
    # half dissolved: the sneaker's own pixels still explain most of x_t's
    page.wait_for_function("window.latentExplorer.scrub.at(450) !== null")
    with np.load(root / "fashion-mnist" / "gallery.npz") as npz:
        clean = npz["images"][int(sneaker)].astype(float).ravel()
    mixed = np.array(page.evaluate("window.latentExplorer.scrub.at(450)")["pixels"], float)
    assert np.corrcoef(clean, mixed)[0, 1] > 0.5
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "13_talk_sneaker_presenter.png")

    # keys: right arrow moves t by 10, S steps, R runs, X stops, P leaves presenter mode
    page.locator("h1").first.click()                                   # focus off any field
    page.keyboard.press("ArrowRight")
    expect(scrub.locator(".le-xt-caption")).to_contain_text("t = 460")
    run = page.locator("#vdm-run-view .le-caption")
    expect(run).to_contain_text("0 taken")
    # the page's first run is on the default dataset; the scene's dataset brings a new one
    page.wait_for_function("(window.latentExplorer.run.state.history || {}).dataset "
                           "=== 'fashion-mnist'")
    page.keyboard.press("s")
    expect(run).to_contain_text("1 taken")
    page.keyboard.press("p")
    expect(page.locator("body.presenter")).to_have_count(0)
    assert number(page, "a-index") == sneaker
    assert_no_errors(page)
    page.close()


def test_a_bad_link_is_a_warning_and_the_page_works(served):
    browser, url, _ = served
    page = open_page(browser, url + "?preset=unicorns", 1600)
    toast = page.locator('[data-testid="toast-body"] [data-testid="toast-text"]')
    expect(toast.first).to_contain_text("unknown preset 'unicorns'")
    expect(page.locator("#vae-recon img")).to_be_visible()
    assert page.page_errors == []
    page.close()
