"""Stage 2: the Faust worker. Agents decode batches of typed records, run the detectors' tracker, publish
flags and updates, and expose the figures of the elections this worker owns at scrape time."""
