"""The app serves and its API answers (gradio_client against the launched app)."""

import socket

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = app.demo.launch(server_name="127.0.0.1", server_port=port,
                                prevent_thread_lock=True, quiet=True)
    yield Client(url, verbose=False)
    app.demo.close()


def test_forward_noise_api(client):
    clean = client.predict("fashion-mnist", 0, 0, "cosine", 0, api_name="/forward_noise")
    noisy = client.predict("fashion-mnist", 0, 1000, "cosine", 0, api_name="/forward_noise")
    again = client.predict("fashion-mnist", 0, 1000, "cosine", 0, api_name="/forward_noise")
    a, b, c = (np.asarray(Image.open(p)) for p in (clean, noisy, again))
    assert a.shape[:2] == (280, 280)
    assert np.array_equal(b, c)                       # same seed, same noise
    assert not np.array_equal(a, b)
