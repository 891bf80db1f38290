"""App Mesh's domain: kinds and ARNs, the API model, validation and rules, errors, snapshots.

Also the concepts both front doors and the runtime share: the semantic rules
with their ids (``rules``, ``problems``), label selectors and mesh/gateway
designation (``selectors``), awsName defaults and node ids (``naming``).

Typed, immutable spec classes live in :mod:`.specs_generated`, written by
:mod:`.generating` (``make models``) from botocore's service model and
parsed with the readers of :mod:`.wirevalues`.

Layer 1: imports only :mod:`meshplane.kit` and botocore's *data* (the service
model is the API's specification). No I/O beyond reading that model (the
development command :mod:`.generating` also writes its module), no HTTP, no
gRPC. Everything a writer must obey lives here, so the REST API, the manifest
front door and the Kubernetes controller share one set of rules.
"""
