"""turnout-watch: real-time turnout monitor for domestic election observers."""

__version__ = "0.1.0"
