"""Alembic branch "compute": the compute_* tables."""
