"""The detector rules, one module per family; each rule owns its test, severity, message and evidence.

`detectors.types.Rule` is what they share; `detectors.tracker` runs them in a fixed order.
"""
