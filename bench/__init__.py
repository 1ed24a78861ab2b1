"""`make bench`: Fanout's speed and memory, measured against the bare Temporal SDK."""
