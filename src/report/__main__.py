"""`python -m src.report`: the command line is src/report/cli.py."""

from src.report.cli import main

raise SystemExit(main())
