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


STEP_SCRIPT = """
import {float32FromBase64} from "./ui/static/lib/codec.js";
import {toUint8} from "./ui/static/lib/mix.js";
import {readPlan, scaled, takeStep} from "./ui/static/lib/sampler.js";
const input = JSON.parse(await new Promise((done) => {
  let text = ""; process.stdin.on("data", (c) => { text += c; }); process.stdin.on("end", () => done(text));
}));
const plan = readPlan(input.plan);
const xs = input.xs.map(float32FromBase64), epsHats = input.eps.map(float32FromBase64);
let before = null;                        // x0_hat of the step before (2nd-order rules)
const out = plan.rules.map((rule, k) => {
  const o = takeStep(rule, xs[k], epsHats[k], plan.noise.get(k), before);
  before = o.x0;
  return {x: Array.from(o.x), x0: Array.from(o.x0), eps: Array.from(o.eps),
          pictures: [toUint8(scaled(o.eps, input.scale)), toUint8(o.x0), toUint8(o.x)]
            .map((p) => Array.from(p))};
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.parametrize("sampler,eta,clip", [("ddpm", 0.0, True), ("ddpm", 0.0, False),
                                              ("ddim", 0.0, True), ("ddim", 0.5, False),
                                              ("dpmpp2m", 0.0, True), ("dpmpp2m_sde", 0.0, True),
                                              ("heun", 0.0, False),
                                              ("heun", 0.0, True)])
def test_the_page_takes_a_step_as_the_sampler_does(sampler, eta, clip):
    """lib/sampler.js's takeStep on the sampler's StepRules, the x_t and eps_hat of a real run
    and the z ui/vdm/pagerun.py sends (and, for DPM-Solver++ and Heun's corrector, the x0_hat
    of the step before), against Sampler.step on the same: the same x_{t_prev},
    x0_hat and eps_hat to float32 rounding, and the same pixels (the panel's pictures)."""
    from explorer.noise import standard_normal
    from explorer.samplers import make_sampler
    from explorer.sampling import step_generator
    from ui.vdm.run import NOISE_SCALE, image

    s = make_schedule("cosine", 1000)
    kwargs = {"eta": eta} if sampler == "ddim" else {}
    smp = make_sampler(sampler, s, clip_sample=clip, **kwargs)
    smp.set_timesteps(12)
    rules = smp.rules()
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn((1, 1, 28, 28), generator=g) * 1.5 for _ in rules]
    eps = [torch.randn((1, 1, 28, 28), generator=g) for _ in rules]
    noisy = [k for k, r in enumerate(rules) if r.noise > 0]
    zs = [standard_normal((1, 1, 28, 28), step_generator(7, k)) for k in noisy]
    plan = {"fields": list(rules[0]._fields), "rules": [list(r) for r in rules], "start": 0,
            "x": b64(xs[0].numpy()), "noise_steps": noisy,
            "noise": b64(torch.cat(zs).numpy()) if zs else ""}
    got = json.loads(subprocess.run(
        [NODE, "--input-type=module", "-e", STEP_SCRIPT], cwd=REPO, check=True, text=True,
        capture_output=True, timeout=60,
        input=json.dumps({"plan": plan, "xs": [b64(x.numpy()) for x in xs],
                          "eps": [b64(e.numpy()) for e in eps], "scale": NOISE_SCALE})).stdout)
    assert smp.deterministic or noisy                          # the noisy cases do add noise
    assert sampler in ("ddpm", "ddim") or any(r.x0_prev for r in rules)   # 2nd order: used
    for k, (rule, page) in enumerate(zip(rules, got)):
        out = smp.step(eps[k], rule.t, xs[k], generator=step_generator(7, k))
        for name, ours in (("x", out.prev_sample), ("x0", out.pred_original_sample),
                           ("eps", out.pred_noise)):
            diff = np.abs(np.array(page[name], np.float32) - ours.numpy().ravel()).max()
            assert diff <= 2e-6 * max(1.0, float(ours.abs().max())), (k, name, diff)
        pixels = [image(out.pred_noise, NOISE_SCALE), image(out.pred_original_sample),
                  image(out.prev_sample)]
        for ours, theirs in zip(pixels, page["pictures"]):
            # a value within a rounding of a level's edge may land on either side
            assert np.abs(ours.astype(int).ravel() - np.array(theirs)).max() <= 1
