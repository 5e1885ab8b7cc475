"""The bad-input matrix (bench/badinputs.py) against the launched app: every public endpoint,
every input, every BAD value over raw HTTP and a part of them through gradio_client; no call
may end in a generic error or accept a value its input does not declare valid. Also: a file
given by a path Gradio did not receive is refused like a missing upload (existing file, missing
file, folder alike), and the direct route that would skip the queue is closed. The counts go
to artifacts/bad_inputs.json."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app_env import build_pretrained, close_app, launch_app

pytest.importorskip("gradio_client")


from bench.badinputs import (baselines, counts, failures, path_probes,  # noqa: E402
                             public_endpoints, raw_call, run_matrix, valid_value)
from bench.client import gradio_client  # noqa: E402
from bench.inputs import AppInputs  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
MATRIX: dict = {}
GIVEN = {"dataset": "mnist"}        # the tiny models' complete dataset (app_env: no F-MNIST 2-D VAE)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    yield url, gradio_client(url), AppInputs.fetch(urlparse(url).port)
    close_app(app)


def save_matrix(transport: str, results) -> None:
    MATRIX[transport] = dict(counts(results))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bad_inputs.json").write_text(json.dumps(MATRIX, indent=1))


# gradio_client goes through the same guard as raw HTTP, which gets every BAD value: the client
# gets the values whose encoding is its own (None, a string, a fraction where a whole number is
# wanted), so CI spends its minutes once; `python -m bench.hardening` sends it all of them
CLIENT_VALUES = [None, "abc", 2.5]


@pytest.mark.parametrize("transport, values, least", [("raw HTTP", None, 1500),
                                                      ("gradio_client", CLIENT_VALUES, 450)])
def test_every_bad_value_is_refused_by_name(served, tmp_path, transport, values, least):
    url, client, inputs = served
    results = run_matrix(url, client, inputs, tmp_path, transport, given=GIVEN, values=values)
    save_matrix(transport, results)
    assert len(results) >= least                       # every endpoint, input and value
    assert failures(results) == []


def test_the_valid_baseline_of_every_endpoint_is_accepted(served, tmp_path):
    """The matrix means something only if the calls it varies work with every value valid."""
    url, client, inputs = served
    files = baselines(url, inputs, tmp_path)
    failed = {}
    for api, params in public_endpoints(client, inputs).items():
        ok, message = raw_call(url, api, [valid_value(inp, files, False, GIVEN) for _, inp in params])
        if not ok and "session" not in message:       # state-only endpoints need a Reset first
            failed[api] = message
    assert failed == {}


def test_paths_gradio_did_not_receive_are_refused_alike(served, tmp_path):
    """A picture given by path (no upload behind it) is never opened: an existing picture, a
    missing file, a folder and a system file all get the missing-upload message, and nothing
    in the message tells them apart."""
    url, _, _ = served
    probes = path_probes(url, tmp_path)
    assert len(probes) >= 28
    assert [(api, payload, message) for api, payload, alike, message in probes if not alike] == []


def test_the_direct_route_that_skips_the_queue_is_closed(served):
    url, client, inputs = served
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", "/gradio_api/run/vae_sample", body=json.dumps(
        {"data": ["mnist", 4, 1.0, 0]}), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status >= 400 and b"queue" in response.read()
    assert client.predict("mnist", 4, 1.0, 0, api_name="/vae_sample")     # the queue works
