"""The local runtime: app processes with Envoy sidecars on one machine, like pods on a cluster.

Layer 3. May import :mod:`meshplane.envoy`, :mod:`meshplane.model`,
:mod:`meshplane.settings` and :mod:`meshplane.kit`; reaches the control plane
only over HTTP (aiohttp's client), never through the store or the service, so
it runs the same against a local or a remote control plane.

Modules: ``workloads`` (the workloads file), ``selecting`` (podSelector →
VirtualNode → node id), ``virtualnodes`` (VirtualNode objects from the control
plane or from files), ``ports`` (free loopback ports), ``processes`` (one
supervised child: process group, log lines, restart backoff, clean stop),
``sidecars`` (a replica's Envoy), ``admin`` (reading Envoy's admin
interface), ``publishing`` (the host-port forwarder), ``controlplane`` (the
HTTP client), ``supervising`` (all of it together) and ``status`` (the live table).
"""
