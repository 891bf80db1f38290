"""App Mesh's domain: resource kinds and ARNs, the API model, validation, errors, snapshots.

Layer 1: imports only :mod:`meshplane.kit` and botocore's *data* (the service
model is the API's specification). No I/O beyond reading that model, no HTTP,
no gRPC. Everything a writer must obey lives here, so the REST API, the
manifest front door and the Kubernetes controller share one set of rules.
"""
