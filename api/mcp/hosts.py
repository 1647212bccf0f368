"""Which ``Host`` headers ``/mcp`` answers: protection against DNS rebinding.

A web page on ``evil.example`` can make a browser send requests to a server on the
victim's machine or network by pointing its own name at that address; the requests then
carry ``Host: evil.example``. The MCP endpoint answers only the names it is known by:
``localhost``, ``127.0.0.1`` and ``[::1]``, the host of ``ORDINAUT_PUBLIC_URL``, the address
``ordinaut api --host`` binds (when it is not a wildcard), and ``ORDINAUT_MCP_ALLOWED_HOSTS``
(``*``: any host). A pattern ``name`` or ``name:*`` matches any port, ``name:port`` one port.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings

from engine.settings import Settings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ANY_HOST = "*"


@dataclass(frozen=True)
class AllowedHosts:
    """The host patterns ``/mcp`` accepts (see the module docstring)."""

    patterns: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> AllowedHosts:
        patterns = list(LOCAL_HOSTS)
        if settings.public_url:
            patterns.append(host_of(settings.public_url))
        patterns += settings.mcp_allowed_hosts
        return cls(tuple(dict.fromkeys(pattern.lower() for pattern in patterns)))

    @property
    def any(self) -> bool:
        return ANY_HOST in self.patterns

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header may be answered."""
        if self.any:
            return True
        if not host:
            return False
        name, port = split_host(host.lower())
        for pattern in self.patterns:
            wanted, wanted_port = split_host(pattern)
            if wanted == name and wanted_port in (None, "*", port):
                return True
        return False

    def transport_security(self) -> TransportSecuritySettings:
        """The same rule for the SDK's own check, which also refuses foreign ``Origin``s."""
        if self.any:
            return TransportSecuritySettings(enable_dns_rebinding_protection=False)
        hosts: list[str] = []
        for pattern in self.patterns:
            name, port = split_host(pattern)
            hosts += [name, f"{name}:*"] if port in (None, "*") else [pattern]
        origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
        )


def split_host(host: str) -> tuple[str, str | None]:
    """``("name", "port")`` from ``name:port``; the port is None when absent. IPv6 addresses
    keep their brackets."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            rest = host[end + 1 :]
            return host[: end + 1], rest[1:] if rest.startswith(":") else None
    name, colon, port = host.rpartition(":")
    return (name, port) if colon else (host, None)


def host_of(url: str) -> str:
    """The host of ``url`` as a pattern matching any port (IPv6 in brackets)."""
    hostname = urlsplit(url).hostname or ""
    return f"[{hostname}]" if ":" in hostname else hostname


def bind_host_pattern(host: str) -> str | None:
    """The pattern for the address the API binds, or None for a wildcard (``0.0.0.0``,
    ``::``): a wildcard says nothing about the names clients use."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        return None
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
