"""`proxy-config --envoy`'s reader: only sockets of this user, and never a private key out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from meshplane.api import envoyadmin

PEM = "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n"


def test_redact_replaces_private_key_members_and_pem_keys_anywhere() -> None:
    """Nested private_key members and stray PEM private keys are replaced; the rest is kept."""
    dump = {
        "configs": [
            {
                "dynamic_active_secrets": [
                    {
                        "name": "s",
                        "secret": {
                            "tls_certificate": {
                                "certificate_chain": {"inline_bytes": "CERT"},
                                "private_key": {"inline_bytes": PEM},
                            }
                        },
                    }
                ]
            },
            {"note": PEM, "privateKey": "x", "kept": [1, "two"]},
        ]
    }
    assert envoyadmin.redact(dump) == {
        "configs": [
            {
                "dynamic_active_secrets": [
                    {
                        "name": "s",
                        "secret": {
                            "tls_certificate": {
                                "certificate_chain": {"inline_bytes": "CERT"},
                                "private_key": "[redacted]",
                            }
                        },
                    }
                ]
            },
            {"note": "[redacted]", "privateKey": "[redacted]", "kept": [1, "two"]},
        ]
    }


def test_only_an_existing_unix_socket_is_read(tmp_path: Path) -> None:
    """A missing path or a regular file announced as the admin socket is refused by name."""
    plain = tmp_path / "plain"
    plain.write_text("not a socket")
    with pytest.raises(envoyadmin.Unreachable, match=f"^{plain} is not a socket$"):
        envoyadmin.check_socket(str(plain))
    missing = tmp_path / "missing"
    with pytest.raises(
        envoyadmin.Unreachable, match=f"^admin socket {missing}: No such file or directory$"
    ):
        envoyadmin.check_socket(str(missing))
    path = tmp_path / "admin.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        envoyadmin.check_socket(str(path))  # no exception: a socket of this user
