"""The ``appmesh.k8s.aws/v1beta2`` manifest front door: the real controller's rules, once.

Layer 3 (adapters' shared core). Imports :mod:`meshplane.service`,
:mod:`meshplane.store`, :mod:`meshplane.model`, :mod:`meshplane.settings` and
:mod:`meshplane.kit`; never ``api``, ``cli`` or an HTTP framework. Parsing
(``documents``), the CRD schemas (``crds``, ``schema``) and the
CustomResourceDefinitions generated from them (``definitions``), the webhooks'
defaults, immutability and membership with the shared rules of
:mod:`meshplane.model.rules` in the webhook's words (``admission``,
``wording``), conversion to App Mesh API specs with
dependency gating (``conversion``) and reconciliation through the domain
service live here, so the local ``meshplane apply`` and the Kubernetes
controller share them unchanged. Reconciliation is per object
(``reconciling``: done, requeue after a delay, or a permanent error, see
``results``), writes status and events only through replaceable sinks
(``sinks``), and is driven locally to a fixed point by ``converging``; a
controller drives the same ``ObjectReconciler`` from its work queue.
"""
