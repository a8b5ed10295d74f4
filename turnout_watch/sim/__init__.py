"""Stand-ins and measurement, not the product: seeded synthetic days and `evaluate`, the CEC site
simulator and its renderer, and the observer simulator. They drive the services, never the reverse.
"""
