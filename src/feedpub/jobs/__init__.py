"""The only layer that chains stages: config -> articles -> feeds / digest -> delivery.

`cli`, `scheduler` and `web` call these functions and never each other.
"""
