"""Run every benchmark in turn: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

from bench import (
    ack_streams,
    api_latency,
    cli_startup,
    console_latency,
    console_pageload,
    fuzz,
    hostile,
    interception,
    mesh_scale,
    peer_fanout,
    propagation,
    sds_rotation,
    sidecar_hop,
    store_backends,
    store_growth,
    sync_scale,
    tls_hop,
    xds_churn,
    xds_fanout,
)


def main() -> None:
    """Every benchmark: API, 10x quotas, fan-out (alone and beside go-control-plane),
    1,000 ACKing streams, propagation, hop, interception, store growth, hostile input,
    node-id churn, the fuzzer, the console (latency, and page loads at 10x quotas with 1,000
    proxies), CLI start-up, mTLS and SDS rotation."""
    api_latency.main()
    print()
    mesh_scale.main()
    print()
    sync_scale.main()
    print()
    xds_fanout.main([])
    print()
    peer_fanout.main([])
    print()
    ack_streams.main([])
    print()
    propagation.main([])
    print()
    sidecar_hop.main([])
    print()
    interception.main([])
    print()
    store_growth.main([])
    print()
    store_backends.main([])
    print()
    hostile.main()
    print()
    xds_churn.main([])
    print()
    fuzz.main([])
    print()
    console_latency.main()
    print()
    console_pageload.main(proxies=1000)
    print()
    cli_startup.main()
    print()
    tls_hop.main([])
    print()
    sds_rotation.main([])


if __name__ == "__main__":
    main()
