"""A published address that is taken is reported with what to do about it."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from meshplane.runtime.publishing import Forwarder


def test_a_taken_publish_address_names_the_address_and_the_fix() -> None:
    """Binding a port someone listens on fails with the address and the workloads.yaml hint."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def start() -> None:
            await Forwarder("127.0.0.1", port, lambda: []).start()

        with pytest.raises(OSError, match="cannot publish on") as caught:
            asyncio.run(start())
    assert caught.value.errno == errno.EADDRINUSE
    assert caught.value.strerror == (
        f"cannot publish on 127.0.0.1:{port}: the address is in use; stop what listens there "
        "or change this workload's `publish:` in workloads.yaml"
    )
