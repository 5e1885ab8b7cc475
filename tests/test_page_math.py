"""The page's own arithmetic against the server's: the forward mix and its pixel levels, the
histogram, the filmstrip's picks and the panel's pictures, computed by the ES modules in
ui/static/lib under Node and by explorer/ and ui/ in Python, on the same inputs. They must agree
exactly: the page paints what the downloads contain."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from app_env import REPO
from explorer.data import to_uint8
from explorer.diffusion import q_sample
from explorer.schedules import make_schedule
from ui.plots import HISTOGRAM_BINS
from ui.vdm.run import film_picks

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

SCRIPT = """
import {float32FromBase64} from "./ui/static/lib/codec.js";
import {density} from "./ui/static/lib/histogram.js";
import {mix, toUint8} from "./ui/static/lib/mix.js";
import {filmPicks} from "./ui/static/lib/runs.js";
const input = JSON.parse(await new Promise((done) => {
  let text = ""; process.stdin.on("data", (c) => { text += c; }); process.stdin.on("end", () => done(text));
}));
const x0 = float32FromBase64(input.x0), eps = float32FromBase64(input.eps);
const a = float32FromBase64(input.a), b = float32FromBase64(input.b);
const out = {pixels: {}, density: {}, picks: {}};
for (const t of input.ts) {
  const x = mix(x0, eps, a[t], b[t]);
  out.pixels[t] = Array.from(toUint8(x));
  out.density[t] = density(x, input.bins);
}
for (const k of input.shown) out.picks[k] = filmPicks(k, 10);
process.stdout.write(JSON.stringify(out));
"""


def b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode()


def run_node(payload: dict) -> dict:
    done = subprocess.run([NODE, "--input-type=module", "-e", SCRIPT], cwd=REPO, check=True,
                          input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_the_page_mixes_and_bins_x_t_exactly_as_the_server(schedule):
    s = make_schedule(schedule, 1000)
    g = torch.Generator().manual_seed(1)
    x0 = (torch.rand((28, 28), generator=g) * 2 - 1).numpy()              # float32 in [-1, 1]
    eps = torch.randn((28, 28), generator=g).numpy()
    ts = [0, 1, 17, 250, 500, 999, 1000]
    shown = [0, 1, 7, 9, 10, 11, 123, 999, 1000]
    got = run_node({"x0": b64(x0), "eps": b64(eps), "a": b64(s.sqrt_alpha_bar.numpy()),
                    "b": b64(s.sqrt_one_minus_alpha_bar.numpy()), "ts": ts,
                    "bins": list(HISTOGRAM_BINS), "shown": shown})
    lo, hi, n = HISTOGRAM_BINS
    for t in ts:
        x_t = q_sample(s, x0, t, eps)                                      # the server's mix
        pixels = to_uint8(torch.from_numpy(x_t)[None])[0]
        assert np.array_equal(np.array(got["pixels"][str(t)], np.uint8).reshape(28, 28), pixels)
        counts, _ = np.histogram(np.clip(x_t, lo, hi), bins=np.linspace(lo, hi, n + 1),
                                 density=True)
        assert got["density"][str(t)] == counts.round(4).tolist()
    for k in shown:
        assert got["picks"][str(k)] == film_picks(k)
