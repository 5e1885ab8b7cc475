"""What Hugging Face Spaces reads agrees with what the project pins."""

from __future__ import annotations

import re
import tomllib

from app_env import REPO


def _pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[=<>]", d)[0].lower(): d for d in deps}


def _front_matter() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must open with the Spaces front matter"
    block = text.split("---\n")[1]
    return {k.strip(): v.strip().strip('"') for k, v in
            (line.split(":", 1) for line in block.splitlines() if ":" in line)}


def test_spaces_front_matter_names_the_pinned_gradio_and_the_app():
    meta = _front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert _pins()["gradio"] == f"gradio=={meta['sdk_version']}"
    assert (REPO / meta["app_file"]).exists() and meta["python_version"].startswith("3.")


def test_requirements_take_the_cpu_torch_of_the_pinned_version():
    lines = [l for l in (REPO / "requirements.txt").read_text().splitlines()
             if l and not l.startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    torch_pin = _pins()["torch"].split("==")[1]
    assert f"torch=={torch_pin}+cpu" in lines
    app_needs = {"numpy", "safetensors", "scikit-learn", "opentsne", "plotly", "pillow"}
    named = {re.split(r"[=<>\[]", l)[0].lower() for l in lines if not l.startswith("-")}
    assert app_needs <= named
