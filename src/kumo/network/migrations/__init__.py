"""Alembic branch "network": the network_* tables."""
