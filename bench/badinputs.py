"""The bad-input matrix: every public endpoint of a running app (read from the app itself:
gradio_client's view_api for the parameter names, /config for what each input declares), every
input it takes, and the values a careless or hostile caller sends -- None, a string, NaN, +inf,
-inf, -1, 0, 1e9, a fraction where a whole number is wanted, an unknown name -- over raw HTTP
(the queue's POST /gradio_api/call/<api_name>) or through gradio_client (which cannot send NaN
or infinities: those go over raw HTTP only). Used by tests/test_bad_inputs.py and
`python -m bench.hardening`.

Each call ends one of OUTCOMES:
- "refused, named": refused with a message naming the parameter (what a bad value must get; a
  valid value refused because of another input must name that one);
- "accepted": only right for a value the input declares valid (a number in its range, one of
  its choices, None where the input may be empty);
- "accepted wrongly", "generic" (refused without naming a parameter): failures.
The rules are the issue's, written out here, not read from ui/guard.py.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from .client import gradio_client
from .inputs import AppInputs

OUTCOMES = ("refused, named", "accepted", "accepted wrongly", "generic")

BAD = [None, "abc", math.nan, math.inf, -math.inf, -1, 0, 1e9, 2.5, "no-such-name"]
NOT_JSON = {"nan", "inf", "-inf"}              # gradio_client refuses to send these
OPTIONAL = {"a-index", "b-index"}              # empty when the slot holds an upload
NO_UPLOAD = "no uploaded file received"


# ---------------------------------------------------------------- calling the app

def raw_call(url: str, api: str, data: list, session: str | None = None) -> tuple[bool, str]:
    """POST /gradio_api/call/<api> then read its stream: (succeeded, the error's text).
    Without a `session` (hash) each call is a session of its own, for which Gradio first copies
    the settings of every component of the page: ~40 ms of the server's CPU here, most of what
    a refused call costs."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    body = {"data": data} if session is None else {"data": data, "session_hash": session}
    try:
        conn.request("POST", f"/gradio_api/call/{api}", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return False, body.decode(errors="replace")
        event = json.loads(body)["event_id"]
        conn.request("GET", f"/gradio_api/call/{api}/{event}")
        stream = conn.getresponse().read().decode(errors="replace")
    finally:
        conn.close()
    kind, text = None, ""
    for line in stream.splitlines():
        if line.startswith("event: "):
            kind = line[7:].strip()
        elif line.startswith("data: ") and kind == "error":
            payload = json.loads(line[6:])
            text = (payload or {}).get("error") if isinstance(payload, dict) else str(payload)
            text = text or ""
    return kind == "complete", text


def client_call(client, api: str, data: list) -> tuple[bool, str]:
    from gradio_client.exceptions import AppError
    try:
        client.predict(*data, api_name=f"/{api}")
        return True, ""
    except AppError as e:
        return False, str(e)
    except Exception as e:                      # the client's own failures: a generic error
        return False, f"{type(e).__name__}: {e}"


def upload(url: str, path: Path) -> dict:
    """The file payload of `path` uploaded through Gradio's upload route (what a page sends)."""
    import httpx
    with open(path, "rb") as f:
        r = httpx.post(f"{url.rstrip('/')}/gradio_api/upload", files={"files": (path.name, f)})
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}


# ---------------------------------------------------------------- what each input declares

def declared_valid(inp, value) -> bool:
    """Whether `value` is what input `inp` (its /config entry) declares it takes."""
    props, kind = inp.props, inp.type
    if kind in ("radio", "dropdown"):
        return any(value == (c[1] if isinstance(c, list) else c) and type(value) is str
                   for c in props.get("choices") or [])
    if kind in ("slider", "number"):
        if value is None:
            return inp.elem_id in OPTIONAL
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            return False
        low, high = props.get("minimum"), props.get("maximum")
        if kind == "number":
            whole = props.get("precision") == 0
        else:
            whole = float(props.get("step") or 1).is_integer() and float(low).is_integer()
        return (not whole or float(value).is_integer()) and \
            (low is None or value >= low) and (high is None or value <= high)
    if kind == "textbox":
        return value is None or isinstance(value, str)
    return value is None                      # images, drawings: only "no picture" among BAD


def baselines(url: str, inputs: AppInputs, tmp: Path) -> dict:
    """A valid value for every kind of input, cheap to compute: sliders at their minimum,
    boxes and radios at their default, a real upload for pictures and drawings."""
    picture = tmp / "seven.png"
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 12:16] = 255
    Image.fromarray(pixels).save(picture)
    drawing = tmp / "drawing.png"
    Image.fromarray(255 - np.kron(pixels, np.ones((10, 10), np.uint8))).convert("RGBA").save(drawing)
    return {"picture": upload(url, picture), "drawing": upload(url, drawing),
            "picture_path": picture, "drawing_path": drawing}


def valid_value(inp, files: dict, for_client: bool, given: dict | None = None):
    """A valid value for input `inp`: `given[elem_id]` when there, else a cheap one."""
    from gradio_client import handle_file
    if given and inp.elem_id in given:
        return given[inp.elem_id]
    if inp.type == "slider":
        return inp.props.get("minimum")
    if inp.type == "image":
        return handle_file(str(files["picture_path"])) if for_client else files["picture"]
    if inp.type in ("sketchpad", "imageeditor"):             # a Sketchpad is drawn by the latter
        layer = handle_file(str(files["drawing_path"])) if for_client else files["drawing"]
        return {"background": None, "layers": [layer], "composite": layer}
    if inp.type == "textbox":
        return '{"index": 3}'
    return inp.default


# ---------------------------------------------------------------- the matrix

def public_endpoints(client, inputs: AppInputs) -> dict[str, list]:
    """api_name -> [(parameter name, its /config input)] for every public endpoint."""
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    out = {}
    for route, info in named.items():
        api = route.lstrip("/")
        sent = inputs.event(api).sent
        params = [p["parameter_name"] for p in info["parameters"]]
        if len(params) != len(sent):
            raise RuntimeError(f"/{api}: view_api lists {len(params)} inputs, /config {len(sent)}")
        out[api] = list(zip(params, sent))
    return out


def classify(ok: bool, message: str, param: str, names: list[str], valid: bool) -> str:
    if ok:
        return "accepted" if valid else "accepted wrongly"
    if f"{param}:" in message or f"{param} " in message:
        return "refused, named"
    if valid and any(f"{n}" in message for n in [*names, "session"]):
        return "refused, named"               # a valid value refused by what another input says
    return "generic"


def run_matrix(url: str, client, inputs: AppInputs, tmp: Path, transport: str,
               workers: int = 6, given: dict | None = None,
               values: list | None = None) -> list[tuple[tuple, str, str]]:
    """Every (public endpoint, input, BAD value) over `transport` ("raw HTTP" or
    "gradio_client"), the other inputs at valid values (`given`: elem_id -> value, else
    valid_value's): [(case, outcome, message)], a case being
    (api, parameter, input, value, data) and an outcome one of OUTCOMES. `values`: a part of
    BAD instead of all of it."""
    files = baselines(url, inputs, tmp)
    endpoints = public_endpoints(client, inputs)
    for_client = transport == "gradio_client"
    cases = []
    for api, params in sorted(endpoints.items()):
        base = [valid_value(inp, files, for_client, given) for _, inp in params]
        for i, (param, inp) in enumerate(params):
            for value in BAD if values is None else values:
                if for_client and repr(value) in NOT_JSON:
                    continue
                data = list(base)
                data[i] = value
                cases.append((api, param, inp, value, data))

    local = threading.local()

    def own_client():
        """One gradio_client per worker thread (a Client shared by threads can end one call's
        stream while another call waits on it: a CancelledError that is the client's)."""
        if not hasattr(local, "client"):
            local.client = gradio_client(url)
        return local.client

    def own_session() -> str:
        """One session per worker thread over raw HTTP too (as a page or a client has)."""
        if not hasattr(local, "session"):
            local.session = uuid.uuid4().hex
        return local.session

    def one(case):
        api, param, inp, value, data = case
        ok, message = (client_call(own_client(), api, data) if for_client
                       else raw_call(url, api, data, own_session()))
        names = [p for p, _ in endpoints[api]]
        return case, classify(ok, message, param, names, declared_valid(inp, value)), message

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, cases))


def counts(results) -> Counter:
    return Counter(outcome for _, outcome, _ in results)


def failures(results) -> list[str]:
    """The calls that break the rule: a generic error, or a bad value accepted."""
    return [f"/{api} {param}={value!r}: {outcome} ({message[:120]!r})"
            for (api, param, _, value, _), outcome, message in results
            if outcome in ("generic", "accepted wrongly")]


PROBED = {"vae_encode": lambda p: ["mnist", None, p, 4, 0],
          "vdm_loss": lambda p: ["mnist", None, p, 20, 0],
          "vae_pick_upload": lambda p: ["mnist", "A", p]}


def path_probes(url: str, tmp: Path) -> list[tuple[str, dict, bool, str]]:
    """Pictures given by a path Gradio did not receive -- an existing picture, a missing file,
    a folder, a system file; with and without Gradio's file marker; to every endpoint in PROBED
    and as a drawing's layer: [(api, payload, refused alike, message)]. "Refused alike": refused
    with the missing-upload message and no word of the path."""
    real = tmp / "real.png"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(real)
    paths = [str(real), str(tmp / "missing.png"), str(tmp), "/etc/passwd"]
    payloads = ([{"path": p} for p in paths] +
                [{"path": p, "meta": {"_type": "gradio.FileData"}} for p in paths])
    calls = [(api, payload, data(payload)) for api, data in PROBED.items() for payload in payloads]
    calls += [("vae_pick_drawing", {"path": p},
               ["mnist", "A", {"background": None, "layers": [{"path": p}], "composite": None}])
              for p in paths]
    out = []
    for api, payload, data in calls:
        ok, message = raw_call(url, api, data)
        alike = (not ok and (NO_UPLOAD in message or "not uploaded by a user" in message)
                 and not any(p in message for p in paths))
        out.append((api, payload, alike, message))
    return out
