"""Domain operations: the one place every writer goes through.

Layer 2 (above :mod:`meshplane.store`): imports the store, the model and the
settings. The REST API, the manifest front door and the Kubernetes controller are
adapters that call :class:`~meshplane.service.resources.MeshService`; none of
them holds a rule of its own. Every operation validates first and writes inside
one store transaction, so a rejected request leaves the store exactly as it was.
"""
