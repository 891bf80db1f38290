"""meshplane: a self-hosted AWS App Mesh.

The same resources, the same REST API (``aws appmesh``, boto3), the same
``appmesh.k8s.aws/v1beta2`` manifests and the same Envoy data plane, on one
machine or on Kubernetes. The flow is ingest → store → translate → serve; each
stage is a package, and ``pyproject.toml``'s import-linter contract keeps the
layers honest.
"""

__version__ = "0.1.0.dev0"
