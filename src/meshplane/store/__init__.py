"""Persistence: the source of truth for every App Mesh resource, and its change feed.

Layer 2: imports :mod:`meshplane.model` and :mod:`meshplane.kit` only. The store
knows keys, rows, references, idempotency tokens and revisions; it does not know
App Mesh's rules (those are in :mod:`meshplane.model` and :mod:`meshplane.service`).
Everything above depends on the roles in :mod:`meshplane.store.protocols`
(``Store``, read and write transactions, ``Feed``), never on a backend; only
the composition root (:mod:`meshplane.app`) and :mod:`meshplane.testing` name
one, and no module outside this package imports ``sqlite3`` (import contracts
say so). SQLite in WAL mode with ``synchronous=FULL`` is the embedded default
(:mod:`meshplane.store.sqlite`): a write the API acknowledged has been fsynced
and survives ``kill -9``.
"""
