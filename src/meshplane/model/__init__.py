"""App Mesh's domain: kinds and ARNs, the API model, validation and rules, errors, snapshots.

Also the concepts both front doors and the runtime share: the semantic rules
with their ids (``rules``, ``problems``), label selectors and mesh/gateway
designation (``selectors``), awsName defaults and node ids (``naming``).

Layer 1: imports only :mod:`meshplane.kit` and botocore's *data* (the service
model is the API's specification). No I/O beyond reading that model, no HTTP,
no gRPC. Everything a writer must obey lives here, so the REST API, the
manifest front door and the Kubernetes controller share one set of rules.
"""
