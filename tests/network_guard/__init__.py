"""The tests' network guard (see sitecustomize.py)."""
