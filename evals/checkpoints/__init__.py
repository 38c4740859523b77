"""Checkpoint refs, sources (hf, s3, local, package), watermark discovery and safe materialization."""

from evals.checkpoints.discover import DiscoveryResult, Exhausted, discover
from evals.checkpoints.materialize import allows_remote_code, materialize
from evals.checkpoints.ref import CheckpointMeta, CheckpointRef, InvalidRef
from evals.checkpoints.watchlist import EntryError, Watchlist, load_watchlist

__all__ = [
    "CheckpointMeta",
    "CheckpointRef",
    "DiscoveryResult",
    "EntryError",
    "Exhausted",
    "InvalidRef",
    "Watchlist",
    "allows_remote_code",
    "discover",
    "load_watchlist",
    "materialize",
]
