"""Stage 1, the edge: CEC releases (poller, parser, sink, recorded days) and observers' counts (the
intake in `observers/`) into Kafka. Past this package, regions are ISO 3166-2:KZ codes only."""
