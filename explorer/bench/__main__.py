"""`python -m explorer.bench`: see explorer/bench/cli.py (or --help)."""

from explorer.bench.cli import main

raise SystemExit(main())
