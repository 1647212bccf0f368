"""Which Host headers /mcp answers (DNS-rebinding protection), as pure rules."""

from __future__ import annotations

import pytest

from api.mcp.hosts import AllowedHosts, bind_host_pattern, split_host
from api.server import with_bind_host
from engine.settings import Settings

DEFAULT = AllowedHosts.from_settings(Settings())


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:8080", True),
        ("localhost", True),
        ("LOCALHOST:1", True),
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("[::1]", True),
        ("evil.example", False),
        ("evil.example:8080", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io:8080", False),
        ("", False),
        (None, False),
    ],
)
def test_by_default_only_local_names_are_answered(host, allowed):
    assert DEFAULT.allows(host) is allowed


def test_the_public_url_and_the_setting_add_hosts():
    hosts = AllowedHosts.from_settings(
        Settings(
            public_url="https://ordinaut.example.com",
            mcp_allowed_hosts=("lb.internal:8443", "any-port.internal:*", "name.internal"),
        )
    )
    assert hosts.allows("ordinaut.example.com")
    assert hosts.allows("ordinaut.example.com:443")
    assert hosts.allows("lb.internal:8443")
    assert not hosts.allows("lb.internal:8444")
    assert not hosts.allows("lb.internal")
    assert hosts.allows("any-port.internal") and hosts.allows("any-port.internal:1")
    assert hosts.allows("name.internal:80")
    assert hosts.allows("localhost:8080")  # local names stay allowed
    assert not hosts.allows("evil.example")


def test_a_star_allows_every_host_and_turns_the_sdk_check_off():
    hosts = AllowedHosts.from_settings(Settings(mcp_allowed_hosts=("*",)))
    assert hosts.allows("anything.example:1") and hosts.allows(None)
    assert hosts.transport_security().enable_dns_rebinding_protection is False


def test_the_sdk_check_gets_the_same_hosts_and_their_origins():
    security = AllowedHosts.from_settings(
        Settings(mcp_allowed_hosts=("lb.internal:8443",))
    ).transport_security()
    assert security.enable_dns_rebinding_protection is True
    assert {"localhost", "localhost:*", "lb.internal:8443"} <= set(security.allowed_hosts)
    assert "lb.internal" not in security.allowed_hosts
    assert {"http://localhost:*", "https://lb.internal:8443"} <= set(security.allowed_origins)


@pytest.mark.parametrize(
    ("host", "pattern"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.5", "10.0.0.5"),
        ("::1", "[::1]"),
        ("0.0.0.0", None),
        ("::", None),
        ("api.internal", "api.internal"),
    ],
)
def test_the_bound_address_is_answered_unless_it_is_a_wildcard(host, pattern):
    assert bind_host_pattern(host) == pattern
    settings = with_bind_host(Settings(), host)
    expected = (pattern,) if pattern else ()
    assert settings.mcp_allowed_hosts == expected


def test_split_host_keeps_ipv6_brackets():
    assert split_host("[::1]:8080") == ("[::1]", "8080")
    assert split_host("[::1]") == ("[::1]", None)
    assert split_host("name:*") == ("name", "*")
    assert split_host("name") == ("name", None)
