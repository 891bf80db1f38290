"""The web console: the mesh at a glance, served by the control plane at ``/console/``.

Layer 7, beside ``cli``: it reads the composition root's :class:`~meshplane.app.ControlPlane`
(the store, through ``store.snapshots``, and the per-proxy read model ``sync.proxyviews``)
and adds its routes to the API application through ``app.running(..., mounts=[...])``.
Server-rendered HTML with one small vanilla script (no front-end build step; the files are
package data under ``static/``); read-only. Live updates are server-sent events woken by the
read model, which moves after every store revision the sync stage applies and every
ACK/NACK/connect — never by a polling loop.

Modules: ``credentials`` (who may log in: the :class:`CredentialLookup` role),
``sessions`` (HMAC-signed session cookies), ``pages`` (HTML, everything escaped),
``serving`` (the aiohttp routes, origin checks, the event stream), ``caching`` (answers kept
per store revision or read-model change), ``assets`` (static files addressed by digest). Only
``api`` and this package serve HTTP (an import contract says so).
"""

from __future__ import annotations

from meshplane.console.credentials import CredentialLookup, GeneratedKey, load_credentials
from meshplane.console.serving import Console

__all__ = ["Console", "CredentialLookup", "GeneratedKey", "load_credentials"]
