"""Talk mode in a real browser (headless Debian Chromium via Playwright): a bookmarked scene is
what the page shows, and the keyboard drives the VDM tab. Screenshots go to artifacts/browser/."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app_env import build_pretrained, close_app, launch_app
from test_browser import ARGS, ARTIFACTS, CHROMIUM, WAIT, assert_no_errors, number, src, sync_api

expect = sync_api.expect


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


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.page_errors = []
    page.on("pageerror", lambda e: page.page_errors.append(str(e)))
    page.set_default_timeout(WAIT)
    page.goto(url)
    return page


def first_of(root, dataset: str, class_name: str) -> int:
    with np.load(root / dataset / "gallery.npz") as npz:
        names = list(npz["class_names"])
        return int(np.flatnonzero(npz["labels"] == names.index(class_name))[0])


def checked_dataset(page) -> str:
    return page.locator("#dataset input:checked").get_attribute("value")


def test_a_3_turning_into_an_8(served):
    browser, url, root = served
    page = open_page(browser, url + "?preset=three-to-eight")
    expect(page.locator("#vae-a-index input")).to_have_value(str(first_of(root, "mnist", "3")))
    expect(page.locator("#vae-b-index input")).to_have_value(str(first_of(root, "mnist", "8")))
    assert checked_dataset(page) == "mnist"
    expect(page.get_by_role("tab", name="VAE", exact=True)).to_have_attribute("aria-selected",
                                                                              "true")
    page.locator("#vae-lerp").scroll_into_view_if_needed()
    expect(page.locator("#vae-lerp img")).to_be_visible()
    assert_no_errors(page)
    page.close()


def test_a_sneaker_dissolving_then_the_keyboard(served):
    browser, url, root = served
    page = open_page(browser, url + "?preset=sneaker-dissolving&presenter=1")
    sneaker = str(first_of(root, "fashion-mnist", "Sneaker"))
    expect(page.get_by_role("tab", name="Diffusion (VDM)")).to_have_attribute("aria-selected",
                                                                              "true")
    expect(page.locator("#vdm-a-index input")).to_have_value(sneaker)
    expect(page.locator("#vdm-t input[type=number]")).to_have_value("850")
    assert checked_dataset(page) == "fashion-mnist"
    expect(page.locator("body.presenter")).to_have_count(1)
    expect(page.locator("#vdm-hist .gtitle")).to_contain_text("t = 850")
    # the server's own picture at the scene's t (a scene sets t with no input event: the page
    # asks for it, ui/scrub_paint.py)
    expect(page.locator("#vdm-xt img")).to_have_attribute("src", re.compile(r"x_t-0850-"))
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "13_talk_sneaker_presenter.png")

    # keys: right arrow moves t by 10, S steps, P leaves presenter mode
    page.locator("h1").first.click()                                   # focus off any field
    old = src(page, "vdm-xt")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#vdm-t input[type=number]")).to_have_value("860")
    expect(page.locator("#vdm-hist .gtitle")).to_contain_text("t = 860")
    expect(page.locator("#vdm-xt img")).not_to_have_attribute("src", old)
    expect(page.locator("#vdm-xt img")).to_have_attribute("src", re.compile(r"x_t-0860-"))
    expect(page.locator("#vdm-step-text")).to_contain_text("0 taken")
    page.keyboard.press("s")
    expect(page.locator("#vdm-step-text")).to_contain_text("1 taken")
    page.keyboard.press("p")
    expect(page.locator("body.presenter")).to_have_count(0)
    assert number(page, "vdm-a-index") == sneaker
    assert_no_errors(page)
    page.close()


def test_a_bad_link_is_a_warning_and_the_page_works(served):
    browser, url, _ = served
    page = open_page(browser, url + "?preset=unicorns")
    toast = page.locator('[data-testid="toast-body"] [data-testid="toast-text"]')
    expect(toast.first).to_contain_text("unknown preset 'unicorns'")
    expect(page.locator("#vae-recon img")).to_be_visible()
    assert page.page_errors == []
    page.close()
