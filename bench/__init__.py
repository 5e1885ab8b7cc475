"""Benchmarks and the load test of the app on this machine: `python -m bench [--quick] [--json
FILE]`, `python -m bench --load`, `python -m bench.hardening`. They measure the app from outside; `explorer/` knows nothing of
them.

The parts, none importing gradio: the server-side compute of each interaction timed in-process
on the explorer package (compute.py); the app started as a subprocess and called over raw HTTP
(client.py), with its cold start and memory (server.py); the page in headless Chromium through
Playwright (browser.py); many users at once (load.py: the users in users.py, the checks that
ride along in checks.py). Every event's inputs are read from the app's own /config (inputs.py);
the page's run view is reached through its server functions (page.py). The bad-input matrix
(badinputs.py, also run by tests/test_bad_inputs.py) and the hardening figures (hardening.py:
unreceived files, the memory of many maps, output folders) use gradio_client. stats.py holds the row
and its verdict against a target, report.py the table, BENCHMARKS.md and JSON, profiling.py the
optional profiles, cli.py the command line. The benchmark reports; it never fails on a missed
target.
"""
