"""Persistence: the source of truth for every App Mesh resource, and its change feed.

Layer 2: imports :mod:`meshplane.model` and :mod:`meshplane.kit` only. The store
knows keys, rows, references, idempotency tokens and revisions; it does not know
App Mesh's rules (those are in :mod:`meshplane.model` and :mod:`meshplane.service`).
SQLite in WAL mode with ``synchronous=FULL`` is the embedded default: a write the
API acknowledged has been fsynced and survives ``kill -9``.
"""
