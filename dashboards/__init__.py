"""Grafana dashboards, alert rules and coordinators' routing as code, and the files generated from them.
They read the workers' metrics by name only."""
