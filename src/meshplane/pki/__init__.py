"""The built-in certificate authority: workload certificates without SPIRE or ACM.

Layer 2, beside :mod:`meshplane.store`, :mod:`meshplane.translate` and
:mod:`meshplane.xds`. Owns the CA's key and certificate on disk
(``<data-dir>/ca/ca.pem``, the key beside it with mode 0600, created at first
start, or a bring-your-own intermediate) and issues short-lived leaf
certificates whose SAN is the SDS secret name that asked for them, so the
``spiffe://<trust domain>/<name>`` names of App Mesh's SPIRE walkthrough work
as they are. Every piece of X.509 comes from the ``cryptography`` library; no
ASN.1 is written here. May import :mod:`meshplane.kit`, ``cryptography`` and
:mod:`meshplane.model.certnames` (the SAN rule translation shares) only; the clock
is injected.
"""

from meshplane.pki.authority import Authority, Issued, load_or_create
from meshplane.pki.issuing import Issuer

__all__ = ["Authority", "Issued", "Issuer", "load_or_create"]
