"""Talk mode: the scenes a URL names (ui/talk.py), without a browser; the browser checks that a
bookmarked scene is what the page shows (test_browser_talk.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ui import talk
from ui.store import STORE


def test_a_preset_is_its_scene_and_parts_override_it():
    scene = talk.scene_from_query({"preset": "three-to-eight"})
    assert scene == talk.PRESETS["three-to-eight"][1]
    tweaked = talk.scene_from_query({"preset": "three-to-eight", "b": "5", "presenter": "1"})
    assert (tweaked.dataset, tweaked.tab, tweaked.a, tweaked.b, tweaked.presenter) == (
        "mnist", "vae", "3", 5, True)
    by_hand = talk.scene_from_query({"tab": "vdm", "dataset": "mnist", "a": "12", "t": "600"})
    assert (by_hand.tab, by_hand.dataset, by_hand.a, by_hand.t) == ("vdm", "mnist", 12, 600)
    assert talk.scene_from_query({"a": "Sneaker"}).a == "Sneaker"       # a class name
    toy = talk.scene_from_query({"tab": "playground", "data": "spiral"})
    assert (toy.tab, toy.data, toy.dataset) == ("playground", "spiral", None)
    assert talk.scene_from_query({}) is None and talk.scene_from_query({"utm": "x"}) is None


@pytest.mark.parametrize("query, message", [
    ({"preset": "nope"}, "valid: sneaker-dissolving"),
    ({"tab": "gan"}, "valid: vae, hvae, vdm, playground"),
    ({"data": "swiss-roll"}, "valid: moons, spiral, rings, gaussians, checkerboard"),
    ({"dataset": "cifar"}, "valid: fashion-mnist, mnist"),
    ({"t": "soon"}, "t must be a whole number"),
    ({"layer": "0"}, "layer must be a whole number in 1..16"),
])
def test_a_bad_query_is_refused_with_what_is_valid(query, message):
    with pytest.raises(ValueError, match=message):
        talk.scene_from_query(query)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_every_preset_names_real_gallery_images(dataset):
    gallery = STORE.gallery(dataset)
    names = list(gallery.class_names)
    for name, (_, scene) in talk.PRESETS.items():
        if scene.dataset != dataset:
            continue
        for value in (scene.a, scene.b):
            index = talk._index(dataset, value)
            assert gallery.labels[index] == names.index(value), name     # the class it names
            assert np.flatnonzero(gallery.labels == names.index(value))[0] == index   # its first
    assert talk._index(dataset, 7) == 7
    with pytest.raises(ValueError, match="gallery index must be a whole number"):
        talk._index(dataset, len(gallery))
    with pytest.raises(ValueError, match="unknown class 'Unicorn'"):
        talk._index(dataset, "Unicorn")


def test_a_scene_left_for_a_session_is_taken_once():
    talk._leave("s1", ("mnist", 3, 8))
    assert talk.pending("s1", "fashion-mnist") is None          # another dataset: no
    assert talk.pending("s2", "mnist") is None                  # another session: no
    assert talk.pending("s1", "mnist") == (3, 8)
    assert talk.pending("s1", "mnist") is None                  # taken once
