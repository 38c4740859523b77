"""Checkpoint sources, one per module; the registry (evals.checkpoints.registry) imports them on first use."""
