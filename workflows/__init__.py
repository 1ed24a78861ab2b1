"""Temporal workflows: `JobWorkflow` and the contract it speaks."""
