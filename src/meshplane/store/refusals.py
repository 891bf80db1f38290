"""Why a store refuses to open: the one-line reasons an operator acts on.

A store that would be served wrong is not served at all. Each reason is a
:class:`StoreRefused` whose message names the file and what to do, printed by
the CLI as one line (never a traceback)::

    StoreRefused           (RuntimeError)
    ├── DataDirLocked      another process serves this data dir
    ├── StoreDamaged       empty, truncated, not a store, or fails the quick check
    ├── StoreUnwritable    its file system is read-only or full, or the file cannot be opened
    ├── StoreTooNew        written by a newer meshplane (a higher schema version)
    └── StoreInUse         a restore while replicas are connected to the database
"""

from __future__ import annotations


class StoreRefused(RuntimeError):
    """The store cannot be opened safely; the message says why and what to do."""


class DataDirLocked(StoreRefused):
    """Another process holds the data dir's lock; the message names it."""


class StoreDamaged(StoreRefused):
    """The store file exists but is not a sound meshplane store."""


class StoreUnwritable(StoreRefused):
    """The store's file system refuses it: read-only, full, or the file cannot be opened."""


class StoreTooNew(StoreRefused):
    """The store's schema is newer than this meshplane knows."""


class StoreInUse(StoreRefused):
    """A restore was asked for a database that running replicas are connected to."""
