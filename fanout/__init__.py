"""Fanout's shared runtime pieces: settings, the Temporal connection and the `make run` launcher."""
