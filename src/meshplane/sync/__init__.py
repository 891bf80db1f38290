"""The control loop: store changes and proxy connections in, per-proxy snapshots out.

Layer 3. Imports :mod:`meshplane.store`, :mod:`meshplane.translate`,
:mod:`meshplane.xds`, :mod:`meshplane.pki` and :mod:`meshplane.model`. It is the only
place that knows both App Mesh (through translate) and xDS (through the snapshot cache): it follows
the store's change feed (the ``Feed`` protocol: woken when the revision moves, it
reads the changes since the last one it applied), debounces bursts, works out
which connected proxies a change affects (those of the changed mesh), rebuilds
only their snapshots and hands them to the cache, which pushes them with ACK-gated ordering.
The SDS secrets a translation names are issued by the built-in CA (:mod:`meshplane.pki`)
and put in the same snapshot; a certificate due for renewal wakes the loop too.
"""
