"""greeter: a gRPC server answering every unary call with the method path it was called on.

So a client sees exactly which ``/<service>/<method>`` the gateway delivered. Needs grpcio (a
meshplane dependency, so ``{python}`` has it). Environment: ``PORT`` (set by meshplane's runtime).
"""

from __future__ import annotations

import os
from concurrent import futures
from typing import Any

import grpc


class AnyMethod(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Serves every unary method: the answer is the method's path, as bytes."""

    def service(self, details: Any) -> Any:
        """The handler for one call, answering with its method path."""
        method: str = details.method

        def answer(_request: bytes, _context: Any) -> bytes:
            return method.encode()

        return grpc.unary_unary_rpc_method_handler(answer)


def main() -> None:
    """Serve on 127.0.0.1:$PORT until stopped."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[AnyMethod()])
    server.add_insecure_port(f"127.0.0.1:{os.environ['PORT']}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
