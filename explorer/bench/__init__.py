"""Benchmarks of the app on this machine: `python -m explorer.bench [--quick] [--json FILE]`.

Three parts, none importing gradio: the server-side compute of each interaction timed
in-process on the explorer package (compute.py); the app started as a subprocess and called
over raw HTTP, with its cold start and memory (server.py); input-to-paint in headless Chromium
through Playwright (browser.py). stats.py holds the row and its verdict against a target,
report.py the table, BENCHMARKS.md and JSON, profiling.py the optional profiles, cli.py the
command line. The benchmark reports; it never fails on a missed target.
"""
