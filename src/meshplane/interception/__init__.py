"""Traffic interception for a sidecar in its own network namespace: ``meshplane proxy-init``.

App Mesh's injector adds an init container (``proxyinit``) that installs nat
rules so the app needs no proxy settings: inbound TCP to the app's ports is
redirected to Envoy's ingress port (15000) and outbound TCP to its egress port
(15001), except Envoy's own traffic (uid 1337) and the ignored ports and
addresses. This package reproduces that contract (``appmesh-controller.md``
§2.4) with Debian's ``iptables``/``ip6tables`` tools:

- :mod:`.contract` reads the ``APPMESH_*`` environment the injector sets;
- :mod:`.rules` turns it into the exact chains and hooks, pure;
- :mod:`.installing` applies them idempotently and removes them.

Imports only :mod:`meshplane.kit` and the standard library (layer 1): the CLI
runs it, and nothing else in meshplane needs it.
"""

from meshplane.interception.contract import Contract, ContractError
from meshplane.interception.installing import InterceptionError, clean, install

__all__ = ["Contract", "ContractError", "InterceptionError", "clean", "install"]
