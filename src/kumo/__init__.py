"""Kumo (雲): a compact, fast, OpenStack-compatible IaaS cloud."""

__version__ = "0.1.0"
