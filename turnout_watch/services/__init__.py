"""What wires the stages together: offline `detect`, `replay`, the local pipeline (embedded broker and
worker processes), the broker launcher, `scrape` with its pipeline, and the backfill of past days.

A stage never starts another stage; the services here do, so they sit above ingest, streams and dashboards.
"""
