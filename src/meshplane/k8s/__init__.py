"""Kubernetes mode: meshplane as the appmesh-controller of a real cluster.

Layer 5, beside ``api``, ``sync`` and ``runtime``. It owns what only a
Kubernetes control plane asks for: list+watch of the ``appmesh.k8s.aws/v1beta2``
custom resources and Namespaces (``watching``), their mirror as
:class:`~meshplane.manifests.objects.ManifestObject` values (``mirroring``), the
controller that feeds them to :mod:`meshplane.manifests` and twins them into the
replica's own store (``controlling``), status and finalizers written back by
the one leader of a Lease (``writing``, ``leading``), the admission webhooks on
the real controller's paths (``admitting``, ``injecting``, ``refusals``, ``webhooks``,
``certificates``, ``registering``), and what replicas share through Secrets (``securing``:
the CA; ``principalsecret``: the principals).

It imports :mod:`meshplane.manifests`, :mod:`meshplane.service`,
:mod:`meshplane.model`, :mod:`meshplane.envoy` and :mod:`meshplane.kit`, and is
the only package that imports a Kubernetes client (lightkube). Rules live in
``manifests`` and ``model``; this package only adapts them to the API server.
"""
