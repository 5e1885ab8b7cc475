"""The page's ES modules under Node's own test runner (`node --test tests/js/*.test.mjs`, also
runnable by itself): their unit tests run as part of `python -m pytest`, so one command checks
both sides of the page."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from app_env import REPO

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None and not os.environ.get("CI"),
                    reason="Node.js is not installed (CI installs it)")
def test_the_page_modules_pass_their_node_tests():
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests" / "js").glob("*.test.mjs"))
    assert files, "no JavaScript tests found in tests/js"
    done = subprocess.run([NODE or "node", "--test", *files], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    summary = [line for line in done.stdout.splitlines() if line.startswith("# ")]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in summary, summary
