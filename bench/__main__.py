"""`python -m bench`: see bench/cli.py (or --help)."""

from bench.cli import main

raise SystemExit(main())
