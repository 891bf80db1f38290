"""Issuing on demand and rotating before expiry: the certificates the sync stage serves.

One certificate per (secret name, extra DNS names), shared by every sidecar
whose config names that secret, as a SPIRE agent hands one SVID to every
workload of an identity. A certificate is renewed once two thirds of its
lifetime have passed, so a rotation pushed over SDS lands well before the old
one expires and connections opened with either chain keep working.
"""

from __future__ import annotations

from meshplane.kit.clock import Clock
from meshplane.pki.authorities import Authorities
from meshplane.pki.authority import Authority, Issued

RENEW_AT = 2 / 3
"""The fraction of a certificate's lifetime after which it is replaced."""


class Issuer:
    """Hands out a current certificate per name, issuing and renewing as time passes."""

    def __init__(
        self,
        authority: Authority,
        clock: Clock,
        ttl_s: int,
        *,
        authorities: Authorities | None = None,
    ) -> None:
        """Issue from ``authority`` certificates valid ``ttl_s`` seconds.

        ``authorities`` adds the per-PCA-ARN CAs (:mod:`meshplane.pki.authorities`): the
        certificates they issue and the bundles their ARNs' trusts accept.
        """
        if ttl_s < 1:
            raise ValueError("certificate TTL must be at least 1 second")
        self.authority = authority
        self.authorities = authorities or Authorities(authority)
        self._clock = clock
        self.ttl_s = ttl_s
        self._issued: dict[tuple[str, tuple[str, ...]], Issued] = {}
        self.count = 0
        """How many certificates were issued (for benchmarks and tests)."""

    def renew_at(self, issued: Issued) -> float:
        """When ``issued`` is due for replacement (epoch seconds)."""
        lifetime = issued.not_after - issued.issued_at
        return issued.issued_at + lifetime * RENEW_AT

    def current(self, name: str, dns_names: tuple[str, ...] = ()) -> Issued:
        """The certificate for ``name`` now: the cached one unless it is due for renewal."""
        key = (name, dns_names)
        found = self._issued.get(key)
        if found is None or self._clock() >= self.renew_at(found):
            found = self.authorities.signer(name).issue(name, self.ttl_s, dns_names)
            self.count += 1
            self._issued[key] = found
        return found

    def bundle(self, arns: tuple[str, ...] = ()) -> bytes:
        """The CA bundle a trust accepts: the ARNs' own CAs, else the built-in one."""
        return self.authorities.bundle(arns)

    def due(self, keys: set[tuple[str, tuple[str, ...]]]) -> bool:
        """Whether any of these certificates is due for renewal now."""
        now = self._clock()
        return any(key in self._issued and now >= self.renew_at(self._issued[key]) for key in keys)

    def due_in(self) -> float | None:
        """Seconds until the next renewal (0 if one is overdue), or ``None`` with none issued."""
        renewal = self.next_renewal()
        return None if renewal is None else max(renewal - self._clock(), 0.0)

    def next_renewal(self) -> float | None:
        """The earliest renewal among the certificates handed out, or ``None``."""
        return min((self.renew_at(i) for i in self._issued.values()), default=None)

    def forget(self, keep: set[tuple[str, tuple[str, ...]]]) -> None:
        """Drop certificates no sidecar names any more (their keys leave memory)."""
        for key in [k for k in self._issued if k not in keep]:
            del self._issued[key]
