"""The latent walk (ui/vae/walk.py, ui/hvae/walk.py, ui/static/lib/walk.js) against the backend:
the page's path latents and cross-fade are explorer.latent's lerp and slerp computed under Node
(lerp and the pixels exactly; slerp's float64 coefficients within an ulp of float32), the
fixture tests/js/walk.test.mjs reads is what the backend computes now, the server's `frames` are
the shipped decoders' mean p(x|z) on the backend's path, bad requests are refused with a clear
reply, and a graph that cannot be offered keeps only itself from the page."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from app_env import REPO
from explorer.data import to_float, to_uint8
from explorer.latent import PATHS, interpolate as latent_path, lerp, slerp

NODE = shutil.which("node")
FIXTURE = REPO / "tests" / "js" / "walk.fixture.json"
REWRITE = "WALK_FIXTURE_WRITE"                   # =1: write the fixture anew

SCRIPT = """
import {crossFade, pathLatents, walkW} from "./ui/static/lib/walk.js";
const input = JSON.parse(await new Promise((done) => {
  let text = "";
  process.stdin.on("data", (c) => { text += c; });
  process.stdin.on("end", () => done(text));
}));
const out = input.cases.map(({za, zb, xa, xb, ks}) => ks.map((k) => {
  const w = walkW(k, input.steps);
  const p = pathLatents(new Float32Array(za), new Float32Array(zb), w);
  return {w, lerp: Array.from(p.lerp), slerp: Array.from(p.slerp),
          fade: Array.from(crossFade(new Float32Array(xa), new Float32Array(xb), w))};
}));
process.stdout.write(JSON.stringify(out));
"""


def f32(values) -> list[float]:
    return np.asarray(values, np.float32).ravel().astype(float).tolist()


def cases() -> list[dict]:
    """Latent pairs of every kind the walk meets: a VAE's (D,), an HVAE layer's (C, H, W), a
    near pair, parallel and opposite ones (slerp falls back to lerp or crosses the origin), a
    zero end; with two pictures each."""
    g = torch.Generator().manual_seed(7)
    vae = torch.randn(2, 32, generator=g) * 1.3
    hvae = torch.randn(2, 8, 7, 7, generator=g)
    near = torch.randn(16, generator=g)
    pairs = [(vae[0], vae[1]), (hvae[0], hvae[1]), (near, near + 1e-3),
             (near, 2.5 * near), (near, -near), (torch.zeros(16), near)]
    pictures = torch.randint(0, 256, (len(pairs), 2, 28, 28), generator=g, dtype=torch.uint8)
    return [{"za": za, "zb": zb, "xa": to_float(p[:1])[0, 0], "xb": to_float(p[1:])[0, 0]}
            for (za, zb), p in zip(pairs, pictures)]


def backend(case: dict, k: int) -> dict:
    """lerp, slerp and the pixel cross-fade at stop k, as the server computes them."""
    from ui.vae.walk import walk_w
    w = walk_w(k)
    return {"w": float(w), "lerp": lerp(case["za"], case["zb"], w),
            "slerp": slerp(case["za"], case["zb"], w),
            "fade": to_uint8(lerp(case["xa"], case["xb"], w).reshape(1, 1, -1)).ravel()}


def run_node(payload: dict) -> list:
    done = subprocess.run([NODE, "--input-type=module", "-e", SCRIPT], cwd=REPO, check=True,
                          input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout)


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_the_page_walks_the_paths_the_backend_walks():
    from ui.vae.walk import STEPS
    ks = [0, 1, 13, 37, 50, 51, 99, STEPS - 1]
    all_cases = cases()
    got = run_node({"steps": STEPS, "cases": [
        {"za": f32(c["za"]), "zb": f32(c["zb"]), "xa": f32(c["xa"]), "xb": f32(c["xb"]),
         "ks": ks} for c in all_cases]})
    for case, rows in zip(all_cases, got):
        for k, page in zip(ks, rows):
            server = backend(case, k)
            assert page["w"] == server["w"]
            assert np.array_equal(np.float32(page["lerp"]), server["lerp"].numpy().ravel())
            # float64 sin and dot in V8 and in torch may differ in the last bit: an ulp at most
            expected = server["slerp"].numpy().ravel()
            assert np.allclose(np.float32(page["slerp"]), expected, rtol=2 ** -23, atol=1e-30)
            assert np.array_equal(np.uint8(page["fade"]), server["fade"].ravel())


def fixture() -> dict:
    """What tests/js/walk.test.mjs checks lib/walk.js against: a VAE-sized latent pair (32,), a
    small HVAE-layer-shaped one (2, 3, 3), flattened, two pictures' first 48 pixels, and the
    backend's lerp, slerp and cross-fade at a few stops."""
    from ui.vae.walk import STEPS
    g = torch.Generator().manual_seed(11)
    pictures = to_float(torch.randint(0, 256, (2, 28, 28), generator=g, dtype=torch.uint8))
    xa, xb = pictures[0, 0].ravel()[:48], pictures[1, 0].ravel()[:48]
    chosen = [{"za": za, "zb": zb, "xa": xa, "xb": xb} for za, zb in
              (torch.randn(2, 32, generator=g), torch.randn(2, 2, 3, 3, generator=g))]
    ks = [0, 37, 50, STEPS - 1]
    return {"about": "written by tests/test_page_walk.py from explorer.latent; do not edit",
            "steps": STEPS, "cases": [
                {"za": f32(c["za"]), "zb": f32(c["zb"]), "xa": f32(c["xa"]), "xb": f32(c["xb"]),
                 "stops": [{"k": k, **{m: f32(v) if m != "fade" else v.ravel().tolist()
                                       for m, v in backend(c, k).items() if m != "w"}}
                           for k in ks]} for c in chosen]}


def test_the_node_fixture_is_what_the_backend_computes():
    expected = fixture()
    if os.environ.get(REWRITE) == "1":
        FIXTURE.write_text(json.dumps(expected, separators=(",", ":")) + "\n")
    assert FIXTURE.exists(), f"no {FIXTURE.name}: run this test with {REWRITE}=1"
    assert json.loads(FIXTURE.read_text()) == expected, \
        f"{FIXTURE.name} is out of date: run this test with {REWRITE}=1"


# ---------------------------------------------------------------- the server's frames

@pytest.fixture(scope="module")
def store():
    from ui.store import STORE
    STORE.reload()                               # the shipped models
    return STORE


def b64(values) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode()


def pixels(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(28, 28)


@pytest.mark.parametrize("kind", ["vae", "hvae"])
def test_the_server_frames_are_the_decoded_path_of_the_backend(store, kind):
    """frames(k) = mean p(x|z) of lerp and slerp at w_k, exactly; and within one level of the
    strips' own path latent_path(mu_A, mu_B, STEPS) decoded at once (its w from
    torch.linspace, an ulp away from w_k)."""
    from ui.hvae import views as hvae_views, walk as hvae_walk
    from ui.vae import walk as vae_walk
    from ui.vae.walk import STEPS, walk_w
    walk = vae_walk if kind == "vae" else hvae_walk
    model = store.model("mnist", kind)
    layer = 2 if kind == "hvae" else None
    sent = walk.view_data("mnist", 3, None, 140, None, *([layer] if layer else []))
    assert sent["compute"]["graph"]["name"] == f"{kind}_decoder"
    shape = tuple(sent["shape"])
    za, zb = (torch.from_numpy(np.frombuffer(base64.b64decode(sent[n]), "<f4").copy())
              .reshape(shape) for n in ("za", "zb"))
    if kind == "vae":
        x = to_float(store.gallery("mnist").images[[3, 140]])
        assert torch.equal(za, model.encode(x[:1])[0][0])           # each encoded alone
        assert torch.equal(zb, model.encode(x[1:])[0][0])
        decode = model.decode_mean
    else:
        def decode(z):
            return hvae_views.decode_at(model, layer - 1, z)
    asked = {"dataset": "mnist", "layer": layer, "za": sent["za"], "zb": sent["zb"]}
    with torch.no_grad():
        strips = {m: to_uint8(decode(latent_path(za, zb, STEPS, m))) for m in PATHS}
        for k in (0, 1, 29, 50, 77, STEPS - 1):
            reply = walk.frames({**asked, "k": k})
            w = walk_w(k)
            exact = to_uint8(decode(torch.stack([lerp(za, zb, w), slerp(za, zb, w)])))
            for i, m in enumerate(PATHS):
                assert np.array_equal(pixels(reply[m]), exact[i]), (m, k)
                gap = np.abs(pixels(reply[m]).astype(int) - strips[m][k]).max()
                assert gap <= 1, (m, k, gap)


def test_a_bad_request_gets_a_clear_reply(store):
    from ui.hvae import walk as hvae_walk
    from ui.vae import walk as vae_walk
    z = b64(np.zeros(32))
    good = {"dataset": "mnist", "za": z, "zb": z, "k": 3}
    for asked, said in (
            ("nothing", "needs an object"),
            ({**good, "dataset": "cifar"}, "unknown dataset"),
            ({**good, "k": 101}, "k must be a whole number in 0..100"),
            ({**good, "k": 2.5}, "k must be a whole number"),
            ({**good, "za": b64(np.zeros(31))}, "za has 124 bytes, not 128"),
            ({**good, "zb": "not base64!"}, "zb is not base64"),
            ({**good, "za": b64(np.full(32, np.nan))}, "za must be finite"),
            ({**good, "zb": b64(np.full(32, 1e6))}, "within ±10000"),
            ({**good, "za": 7}, "za must be base64 of 32 float32")):
        reply = vae_walk.frames(asked)
        assert list(reply) == ["error"] and said in reply["error"], (asked, reply)
    for layer, said in ((0, "layer must be a whole number in 1..2"), (None, "layer must be"),
                        (1, "za has 128 bytes, not 1568")):
        reply = hvae_walk.frames({**good, "layer": layer})
        assert list(reply) == ["error"] and said in reply["error"], (layer, reply)


def test_a_graph_that_cannot_be_offered_keeps_only_itself_from_the_page(tmp_path):
    """A damaged hvae_decoder.onnx leaves the VAE decoder and the eps-network to the page (its
    name ends like vae_decoder.onnx's), and a missing vae_decoder.onnx the HVAE's."""
    from ui.compute import graph_config, page_compute
    from explorer.paths import pretrained_dir
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("onnx.json", "vdm.json", "vdm_eps.onnx", "vae_decoder.onnx", "hvae_decoder.onnx"):
        shutil.copy(pretrained_dir() / "mnist" / name, folder / name)
    assert all(graph_config("mnist", g, tmp_path) for g in ("vae_decoder", "hvae_decoder"))
    damaged = bytearray((folder / "hvae_decoder.onnx").read_bytes())
    damaged[1000] ^= 0xFF
    (folder / "hvae_decoder.onnx").write_bytes(bytes(damaged))
    assert graph_config("mnist", "hvae_decoder", tmp_path) is None
    offered = graph_config("mnist", "vae_decoder", tmp_path)
    assert offered["graph"]["label"] == "VAE decoder" and offered["graph"]["inputs"] == ["z"]
    assert page_compute("mnist", tmp_path)["graph"]["T"] > 0
    shutil.copy(pretrained_dir() / "mnist" / "hvae_decoder.onnx", folder / "hvae_decoder.onnx")
    (folder / "vae_decoder.onnx").unlink()
    assert graph_config("mnist", "vae_decoder", tmp_path) is None
    assert graph_config("mnist", "hvae_decoder", tmp_path)["graph"]["inputs"][-1] == "given"
    with pytest.raises(ValueError, match="unknown graph 'vae'; valid: vdm_eps, vae_decoder"):
        graph_config("mnist", "vae", tmp_path)
