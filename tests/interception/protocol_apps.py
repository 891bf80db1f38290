"""The apps of the protocol test: one server pod and the client that calls it.

``python protocol_apps.py serve NAME`` serves, on 127.0.0.1, a TCP echo on
5432 and a raw-bytes gRPC method ``/echo.Echo/Say`` on 50051 (a grpc listener)
and 8443 (an http2 listener), each answer prefixed with NAME and the port.
``python protocol_apps.py call HOST`` calls all three at HOST and prints one
JSON line of what came back. No protobuf: the gRPC method passes bytes as
they are, which is all a proxy test needs.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading

import grpc

TCP_PORT = 5432
GRPC_PORTS = (50051, 8443)
METHOD = "/echo.Echo/Say"


def serve(name: str) -> None:
    """Run the TCP echo and both gRPC ports until killed."""

    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            self.wfile.write(f"{name}:{TCP_PORT}:".encode() + line)

    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", TCP_PORT), Echo)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    servers = []
    for port in GRPC_PORTS:
        server = grpc.server(_executor())
        say = grpc.unary_unary_rpc_method_handler(
            lambda request, _context, port=port: f"{name}:{port}:".encode() + request
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("echo.Echo", {"Say": say}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        servers.append(server)
    print(f"{name} serving tcp {TCP_PORT}, grpc {GRPC_PORTS}", flush=True)
    servers[0].wait_for_termination()


def call(host: str) -> None:
    """Call the TCP echo and both gRPC ports at ``host``; print the answers as JSON."""
    answers: dict[str, str] = {}
    try:
        with socket.create_connection((host, TCP_PORT), timeout=10) as connection:
            connection.sendall(b"ping\n")
            answers["tcp"] = connection.makefile("rb").readline().decode().strip()
    except OSError as error:
        answers["tcp"] = f"error: {error!r}"
    for port in GRPC_PORTS:
        with grpc.insecure_channel(f"{host}:{port}") as channel:
            say = channel.unary_unary(METHOD)
            try:
                answers[str(port)] = say(b"hello", timeout=10).decode()
            except grpc.RpcError as error:
                answers[str(port)] = f"error: {error.code()}"
    print(json.dumps(answers, sort_keys=True))


def _executor() -> object:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only the server needs it

    return ThreadPoolExecutor(max_workers=4)


if __name__ == "__main__":
    {"serve": serve, "call": call}[sys.argv[1]](sys.argv[2])
