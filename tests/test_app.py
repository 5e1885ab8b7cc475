"""The app serves and its API answers (gradio_client against the launched app)."""

import socket

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def client():
    from bench.client import gradio_client

    from app_env import fresh_app
    from ui.store import STORE

    STORE.reload()                               # the shipped models (another module's may be held)
    app = fresh_app()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=port,
                           prevent_thread_lock=True, quiet=True)
    yield gradio_client(url)
    app.demo.close()


def test_the_real_models_serve_the_vdm_forward_scrub(client):
    """The app with the shipped models: q(x_t | x_0) at t = 0 is the image, at t = T noise."""
    clean = client.predict("fashion-mnist", 0, None, "learned", 0, 0, api_name="/vdm_forward")
    noisy = client.predict("fashion-mnist", 0, None, "learned", 0, 1000, api_name="/vdm_forward")
    again = client.predict("fashion-mnist", 0, None, "learned", 0, 1000, api_name="/vdm_forward")
    a, b, c = (np.asarray(Image.open(p[0])) for p in (clean, noisy, again))
    assert a.shape[1] >= 280 and clean[2]["alpha_bar"] == 1.0
    assert np.array_equal(b, c)                       # same seed, same noise
    assert not np.array_equal(a, b) and noisy[2]["alpha_bar"] < 0.05
