"""Checkpoint refs, sources (hf, s3, local, package), watermark discovery and safe materialization."""
