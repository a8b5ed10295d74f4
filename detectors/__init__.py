"""What is implausible, as pure functions of the records: one module per rule family in `rules/`, the
tracker that keeps each election's state, curves learned from past days. No Kafka, HTTP or Prometheus:
the worker and `turnout-watch detect` run the same code."""
