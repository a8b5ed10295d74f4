"""The ground floor every package stands on: errors, settings, logging, day files, the gazetteer,
normalisation at the edge, and the typed records and topics the stages exchange.

Nothing here imports another package of ours (the import-linter contract in pyproject.toml checks it),
so a detector, a scraper and a worker all read the same records the same way.
"""
