"""What grows with use stays bounded: the shared cache (fitted maps above all, ~9 MB a t-SNE
map), the sessions' reverse runs, the app's output files; and the input checks of ui/guard.py
on components directly (the bad-input matrix in test_bad_inputs.py runs them through the app)."""

from __future__ import annotations

import gc
import os
import time
import weakref

import gradio as gr
import numpy as np
import pytest
import torch

from explorer.trajectory import Trajectory
from ui import common, guard, maps
from ui.store import KEEP, STORE
from ui.vdm import run as vdm_run


# ---------------------------------------------------------------- the shared cache

def test_fifty_distinct_maps_keep_only_the_most_recent_and_free_the_rest():
    points = np.random.default_rng(0).standard_normal((200, 8))
    dropped = []
    for i in range(50):
        projection = maps.fitted(("bounds-test", i), lambda: points, "pca", 30)
        dropped.append(weakref.ref(projection))
        del projection
    gc.collect()
    assert STORE.cache_sizes()["maps"] <= KEEP["maps"]
    alive = [i for i, ref in enumerate(dropped) if ref() is not None]
    assert alive == list(range(50 - KEEP["maps"], 50))         # the most recent, the rest freed
    assert STORE.is_cached(maps.map_key(("bounds-test", 49), "pca", 30))


def test_a_cache_hit_makes_an_entry_recent_again():
    points = np.random.default_rng(1).standard_normal((50, 3))
    first = maps.fitted(("recency-test", 0), lambda: points, "pca", 30)
    for i in range(1, KEEP["maps"] + 3):
        maps.fitted(("recency-test", 0), lambda: points, "pca", 30)    # used between the others
        maps.fitted(("recency-test", i), lambda: points, "pca", 30)
    assert maps.fitted(("recency-test", 0), lambda: None, "pca", 30) is first


def test_the_perplexity_is_one_of_a_few_values():
    low, high, step = maps.PERPLEXITY
    assert len(range(low, high + 1, step)) <= 10
    for bad in (12, 2, 100, 7.5):
        with pytest.raises(ValueError, match="perplexity"):
            maps.map_key(("k",), "tsne", bad)
    assert maps.map_key(("k",), "pca", 12) == maps.map_key(("k",), "pca", 30)   # PCA ignores it


def test_an_unknown_cache_group_is_refused():
    with pytest.raises(ValueError, match="cache group"):
        STORE.cached(("x",), lambda: 1, "no-such-group")


# ---------------------------------------------------------------- the sessions' runs

def _session(steps: int) -> vdm_run.Session:
    """A session whose run recorded `steps` steps (tensors of the model's shape)."""
    run = Trajectory.start("ddpm", steps=1000, eta=0.0, seed=0, prior=lambda z: z)
    for _ in range(steps):
        run.x0s.append(torch.zeros(1, 1, 28, 28))
        run.eps.append(torch.zeros(1, 1, 28, 28))
        run.xs.append(torch.zeros(1, 1, 28, 28))
    return vdm_run.Session("mnist", run)


def test_runs_beyond_the_budget_are_put_away_least_recently_moved_first():
    sessions = [_session(100) for _ in range(5)]                  # ~0.9 MB each
    for i, s in enumerate(sessions):
        s.used = -100 + i                     # moved in this order, before any other session
    busy = sessions[0]
    busy.active = True                                            # a Run under way: kept
    each = sessions[1].nbytes()
    assert each == (3 * 100 + 1) * 28 * 28 * 4                      # x_T and 3 tensors a step
    x_T = 28 * 28 * 4                                             # what a put-away run keeps
    left = vdm_run.put_away_beyond(3 * each + 2 * x_T + (sum(s.nbytes() for s in vdm_run._ALL
                                                   if s not in sessions)))
    assert [s.put_away for s in sessions] == [False, True, True, False, False]
    assert left >= 3 * each                                       # the busy one counts too
    with pytest.raises(ValueError, match="press Reset"):
        vdm_run.step(sessions[1])
    assert sessions[1].nbytes() == 28 * 28 * 4                    # only x_T left
    busy.active = False


def test_a_forgotten_session_is_not_counted():
    s = _session(10)
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None and ref not in [weakref.ref(x) for x in vdm_run._ALL]


# ---------------------------------------------------------------- the app's output files

def test_output_files_are_pruned_by_age_then_by_size(monkeypatch, tmp_path):
    monkeypatch.setattr(common, "_FILE_DIR", tmp_path)
    now = time.time()
    for i, age in enumerate([5000, 3000, 2000, 1000, 500, 10]):
        f = tmp_path / f"f{i}.png"
        f.write_bytes(b"x" * 1000)
        os.utime(f, (now - age, now - age))
    left = common.prune_files(keep_s=2500, keep_bytes=2500)
    names = sorted(p.name for p in tmp_path.iterdir())
    # older than 2500 s: gone; then the oldest until <= 2500 bytes, the one 10 s old always kept
    assert names == ["f4.png", "f5.png"] and left == 2000


# ---------------------------------------------------------------- the checks themselves

@pytest.mark.parametrize("value, ok", [(3, True), (3.0, True), (2.5, False), (None, False),
                                       ("3", False), (True, False), (float("nan"), False),
                                       (float("inf"), False), (-1, False), (17, False)])
def test_a_whole_number_slider(value, ok):
    slider = gr.Slider(1, 16, value=8, step=1, render=False)
    problem = guard.invalid(slider, value)
    assert (problem is None) == ok
    if not ok:
        assert problem.startswith(f"{value!r} is not valid; valid: a whole number in 1..16")


def test_an_optional_box_takes_none_and_a_radio_only_its_choices():
    box = guard.optional(gr.Number(None, precision=0, minimum=0, elem_id="bounds-box",
                                   render=False))
    assert guard.invalid(box, None) is None and guard.invalid(box, 2.5)
    radio = gr.Radio(["pca", "tsne"], value="pca", render=False)
    assert guard.invalid(radio, "tsne") is None
    assert "one of 'pca', 'tsne'" in guard.invalid(radio, None)


def test_files_must_lie_in_the_upload_folder(tmp_path):
    from gradio.utils import get_upload_folder
    image = gr.Image(render=False)
    inside = os.path.join(get_upload_folder(), "abc", "x.png")
    assert guard.invalid(image, {"path": inside}) is None
    for payload in ({"path": "/etc/passwd"}, {"path": str(tmp_path)}, {"url": "http://x/y.png"},
                    "/etc/passwd", {"path": os.path.join(get_upload_folder(), "..", "etc")}):
        assert guard.invalid(image, payload) == guard.NO_UPLOAD
    pad = gr.Sketchpad(render=False)
    assert guard.invalid(pad, {"background": None, "layers": [{"path": "/etc/hosts"}],
                               "composite": None}) == guard.NO_UPLOAD
    assert guard.invalid(pad, {"layers": "x", "oops": 1}).startswith("is not a drawing")
