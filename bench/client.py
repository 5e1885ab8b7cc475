"""Raw HTTP to the app, without gradio_client (it polls every 50 ms and would hide the real
latency): Gradio events, the page's server functions, files.

An event call is Gradio's two-step API: POST /gradio_api/call/<api> {"data": [...]} gives an
event id, GET /gradio_api/call/<api>/<id> streams server-sent events until `complete` (or
`error`). Calls with the same session hash share one Gradio session (its gr.State values), as
the events of one browser tab do. A server function of a view is one POST
/gradio_api/component_server/ (bench/page.py). What `data` an event takes comes from the app
itself (bench/inputs.py).
"""

from __future__ import annotations

import http.client
import json
import socket
import time

HOST = "127.0.0.1"


class CallError(RuntimeError):
    """An endpoint answered with an error event or a refusal (the message is the app's)."""


def gradio_client(url: str):
    """A gradio_client.Client of the app at `url` on this machine. It makes a new httpx client
    for each request, and each of those loads the CA store for TLS (measured here: ~110 ms of CPU
    a call, most of what a refused call costs); a local http:// app has no certificate to check,
    so ssl_verify=False spares that."""
    from gradio_client import Client
    return Client(url, verbose=False, ssl_verify=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def call(port: int, api: str, data: list, session: str | None = None,
         timeout: float = 300.0) -> tuple[float, list]:
    """One round trip: (seconds, the `complete` event's data). Raises CallError on an error
    and TimeoutError when no result came within `timeout` seconds (the stream's heartbeats do
    not keep it waiting). Calls with the same `session` share one Gradio session (its gr.State
    values), as the events of one browser tab do; without one, every call starts a new one."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    body = {"data": data, **({"session_hash": session} if session else {})}
    try:
        conn.request("POST", f"/gradio_api/call/{api}", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise CallError(f"POST /gradio_api/call/{api}: HTTP {response.status} {body[:200]!r}")
        event_id = json.loads(body)["event_id"]
        conn.request("GET", f"/gradio_api/call/{api}/{event_id}")
        response = conn.getresponse()
        event = None
        while True:
            line = response.readline()
            if not line:
                raise CallError(f"/{api}: the stream ended without a result")
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"/{api}: no result within {timeout:g} s (last event: "
                                   f"{event})")
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line[5:].strip() or "null")
                if event == "error":
                    message = payload.get("error") if isinstance(payload, dict) else payload
                    raise CallError(f"/{api}: {message}")
                return time.perf_counter() - start, payload
    finally:
        conn.close()


def view_call(port: int, component_id: int, fn_name: str, data: dict,
              session: str | None = None, timeout: float = 60.0) -> tuple[float, dict]:
    """One call of a view's server function: (seconds, the reply). CallError on an HTTP error
    or a reply that says `error` (a refusal: a busy run, a key the server does not know)."""
    body = {"data": data, "component_id": component_id, "fn_name": fn_name,
            "session_hash": session or "bench-view"}
    start = time.perf_counter()
    raw = request(port, "POST", "/gradio_api/component_server/", body, timeout,
                  what=f"{fn_name} (a server function)")
    reply = json.loads(raw)
    if isinstance(reply, dict) and reply.get("error"):
        raise CallError(f"{fn_name} (a server function): {reply['error']}")
    return time.perf_counter() - start, reply


def request(port: int, method: str, path: str, body: dict | None = None,
            timeout: float = 30.0, what: str | None = None) -> bytes:
    """One plain request; its body. CallError unless HTTP 200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise CallError(f"{what or f'{method} {path}'}: HTTP {response.status} "
                            f"{data[:200]!r}")
        return data
    finally:
        conn.close()


def fetch(port: int, url: str) -> bytes:
    """A file the app served (a URL from an answer)."""
    return request(port, "GET", "/" + url.split("/", 3)[3])


def stream(port: int, api: str, data: list, session: str, found: dict,
           timeout: float = 60.0) -> None:
    """Start a call and read its event stream to the end: found gets event_id, frames (the
    `generating` events), last (the final event), ended (perf_counter at the end) and abort
    (a function that ends the reading from another thread)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    found["abort"] = lambda: conn.sock and conn.sock.shutdown(socket.SHUT_RDWR)
    try:
        found["event_id"] = json.loads(request(port, "POST", f"/gradio_api/call/{api}", {
            "data": data, "session_hash": session}))["event_id"]
        conn.request("GET", f"/gradio_api/call/{api}/{found['event_id']}")
        response = conn.getresponse()
        found["frames"] = 0
        while line := response.readline():
            if line.startswith(b"event:"):
                found["last"] = line[6:].strip().decode()
                found["frames"] += found["last"] == "generating"
    except (CallError, OSError, ValueError) as err:
        found["last"] = f"{type(err).__name__}: {err}"
    finally:
        conn.close()
        found["ended"] = time.perf_counter()
