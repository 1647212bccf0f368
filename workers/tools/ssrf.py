"""The SSRF guard of ``http.request``: agents' URLs may only reach public addresses.

The host is resolved first and *every* address it resolves to must be public (globally
routable, not multicast) unless ``ORDINAUT_HTTP_ALLOW`` lists the host name, the address
or a network containing it. The caller then connects to the address that was checked (not
to the name again), so a DNS answer that changes between check and connect (DNS
rebinding) cannot redirect the request.

Refused: loopback (127.0.0.0/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7 such
as the AWS IPv6 metadata address fd00:ec2::254), link-local (169.254/16 with the cloud
metadata address 169.254.169.254, fe80::/10), shared (100.64/10), unspecified, reserved,
documentation and multicast ranges, and IPv6 forms that embed such an IPv4 address
(``::ffff:127.0.0.1``, ``::127.0.0.1``, ``::ffff:0:127.0.0.1``, 6to4, NAT64 including
local-use 64:ff9b:1::/48, Teredo).

A refusal never tells the agent what a name resolved to, nor whether it resolved at all:
"refusing to connect to 'vm': the host is not allowed" is all it learns about an internal name
(otherwise refusals would map the internal DNS). The worker's log has the detail at DEBUG.
A literal address the agent wrote itself is named with the reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

log = logging.getLogger("ordinaut.tools.ssrf")

# IPv6 ranges whose low 32 bits are an IPv4 address: NAT64 (well-known and local-use),
# IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks) and SIIT
# (::ffff:0:a.b.c.d). Python's ipv4_mapped covers only ::ffff:a.b.c.d.
_EMBEDS_IPV4_LOW_BITS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
)


class AddressRefused(ValueError):
    """The URL's host is (or resolves to) an address that ``http.request`` may not reach."""


class Unresolvable(AddressRefused):
    """The name resolves to nothing (a resolver raises this; the refusal hides it)."""


@dataclass(frozen=True)
class AllowList:
    """Host names, addresses and networks that may be reached although not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not public, or None when it is."""
    for candidate in _embedded(address):
        if candidate.is_loopback:
            return "loopback"
        if candidate.is_link_local:
            return "link-local (cloud metadata lives here)"
        if candidate.is_multicast:
            return "multicast"
        if candidate.is_unspecified:
            return "unspecified"
        if not candidate.is_global:
            return "private or reserved"
    return None


def _embedded(address: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address an IPv6 form carries inside it."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if any(address in network for network in _EMBEDS_IPV4_LOW_BITS):
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo``, off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unresolvable(f"cannot resolve {host!r}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_address(
    host: str, port: int, allow: AllowList, resolve: Resolver = system_resolver
) -> IPAddress:
    """Resolve ``host`` and return the address to connect to; raise :class:`AddressRefused`
    when any address it resolves to is not allowed (a name that mixes public and private
    answers is refused as a whole), or when it resolves to nothing."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return await _checked_name(host, port, allow, resolve)
    reason = blocked_reason(literal)
    if reason is not None and not allow.allows_address(literal) and not allow.allows_host(host):
        raise AddressRefused(
            f"refusing to connect to {literal}: {reason} address; "
            "list it in ORDINAUT_HTTP_ALLOW to allow it"
        )
    return literal


async def _checked_name(host: str, port: int, allow: AllowList, resolve: Resolver) -> IPAddress:
    try:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await resolve(host, port)]
    except Unresolvable as exc:
        log.debug("http.request refused %r: %s", host, exc)
        raise _name_refused(host) from None
    if not addresses:
        log.debug("http.request refused %r: it resolves to no address", host)
        raise _name_refused(host)
    if allow.allows_host(host):
        return addresses[0]
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None and not allow.allows_address(address):
            log.debug("http.request refused %r: %s resolves to a %s address", host, host, reason)
            raise _name_refused(host)
    return addresses[0]


def _name_refused(host: str) -> AddressRefused:
    """The same words whether the name is private, mixed or unknown: nothing about the
    internal DNS leaks through refusals."""
    return AddressRefused(
        f"refusing to connect to {host!r}: the host is not allowed (http.request reaches "
        "public addresses only, unless ORDINAUT_HTTP_ALLOW lists the host)"
    )
