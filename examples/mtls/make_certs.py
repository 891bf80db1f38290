"""Test certificates for the file-based mTLS walkthrough (App Mesh's howto-k8s-mtls-file-based).

Writes a CA and one key pair per tier under CERTS (the manifests name these paths, as
App Mesh's walkthrough named its mounted /certs files). The CA is meshplane's own
built-in CA code (``meshplane.pki``), so no openssl is needed:

    python examples/mtls/make_certs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from meshplane.kit.clock import system_clock
from meshplane.pki import authority

CERTS = Path("/tmp/meshplane-examples/mtls")
TIERS = {
    "backend-blue": "echo-backend-blue",
    "backend-green": "echo-backend-green",
    "frontend": "echo-frontend-blue",
}
"""File stem → the DNS SAN: each virtual node's service-discovery hostname."""
VALID_S = 30 * 86400


def main() -> None:
    """Write ca.pem and <tier>.pem / <tier>-key.pem for each tier."""
    CERTS.mkdir(parents=True, exist_ok=True)
    ca = authority.load_or_create(CERTS / "ca", system_clock)
    (CERTS / "ca.pem").write_bytes(ca.bundle_pem)
    for stem, hostname in TIERS.items():
        issued = ca.issue(hostname, VALID_S)
        (CERTS / f"{stem}.pem").write_bytes(issued.chain_pem)
        key = CERTS / f"{stem}-key.pem"
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
    sys.stdout.write(f"certificates for {', '.join(TIERS.values())} in {CERTS}\n")


if __name__ == "__main__":
    main()
