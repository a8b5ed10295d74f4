"""`python -m turnout_watch.cli` (how the pipeline starts its worker processes)."""

from turnout_watch.cli import main

main()
