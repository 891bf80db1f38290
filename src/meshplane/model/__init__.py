"""App Mesh's domain: resource kinds and ARNs, the API model, validation, errors, snapshots.

Typed, immutable spec classes live in :mod:`.specs_generated`, written by
:mod:`.generating` (``make models``) from botocore's service model and
parsed with the readers of :mod:`.wirevalues`.

Layer 1: imports only :mod:`meshplane.kit` and botocore's *data* (the service
model is the API's specification). No I/O beyond reading that model (the
development command :mod:`.generating` also writes its module), no HTTP, no
gRPC. Everything a writer must obey lives here, so the REST API, the manifest
front door and the Kubernetes controller share one set of rules.
"""
