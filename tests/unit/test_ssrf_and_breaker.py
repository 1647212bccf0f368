"""The SSRF guard's address rules and the circuit breaker's state machine."""

from __future__ import annotations

import ipaddress

import pytest

from engine.errors import CircuitOpen, ToolFailed
from workers.tools import breaker as breaker_module
from workers.tools.breaker import CircuitBreakers
from workers.tools.ssrf import AddressRefused, AllowList, blocked_reason, checked_address

BLOCKED = [
    "127.0.0.1",
    "127.9.9.9",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fe80::1",
    "100.64.0.1",  # shared address space (carrier NAT)
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "192.0.2.1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 of 169.254.169.254
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "::ffff:0:7f00:1",  # SIIT 127.0.0.1
]
PUBLIC = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", BLOCKED)
def test_private_and_special_addresses_are_blocked(address):
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


def resolver(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


async def test_names_are_checked_after_resolution():
    resolve = resolver(
        {
            "public.test": ["93.184.216.34"],
            "sneaky.test": ["127.0.0.1"],
            "mixed.test": ["93.184.216.34", "10.0.0.5"],
            "metadata.test": ["169.254.169.254"],
        }
    )
    allow = AllowList()
    address = await checked_address("public.test", 443, allow, resolve)
    assert str(address) == "93.184.216.34"
    for host in ("sneaky.test", "mixed.test", "metadata.test"):
        with pytest.raises(AddressRefused) as caught:
            await checked_address(host, 443, allow, resolve)
        assert "ORDINAUT_HTTP_ALLOW" in str(caught.value)
    with pytest.raises(AddressRefused):
        await checked_address("[::1]", 80, allow, resolve)
    with pytest.raises(AddressRefused):
        await checked_address("127.0.0.1", 80, allow, resolve)


async def test_the_allow_list_takes_hosts_addresses_and_networks():
    resolve = resolver({"db.internal": ["10.0.0.7"], "other.internal": ["10.0.9.9"]})
    allow = AllowList.parse(["db.internal", "127.0.0.1", "10.0.9.0/24", "fd00::/8"])
    assert str(await checked_address("db.internal", 80, allow, resolve)) == "10.0.0.7"
    assert str(await checked_address("other.internal", 80, allow, resolve)) == "10.0.9.9"
    assert str(await checked_address("127.0.0.1", 80, allow, resolve)) == "127.0.0.1"
    assert str(await checked_address("fd00:ec2::254", 80, allow, resolve)) == "fd00:ec2::254"
    with pytest.raises(AddressRefused):
        await checked_address("127.0.0.2", 80, allow, resolve)


async def test_unresolvable_names_are_refused():
    with pytest.raises(AddressRefused):
        await checked_address("no-such-host.invalid", 80, AllowList())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def call(breakers: CircuitBreakers, key: str, error: Exception | None = None) -> str:
    async with breakers.guard(key):
        if error is not None:
            raise error
    return "ok"


async def test_the_circuit_opens_after_repeated_failures_then_probes():
    clock = Clock()
    breakers = CircuitBreakers(failure_threshold=3, cooldown_seconds=30, clock=clock)
    flaky = ToolFailed("503", retryable=True)
    for _ in range(3):
        with pytest.raises(ToolFailed):
            await call(breakers, "http://a", flaky)
    assert breakers.state("http://a") == "open"
    with pytest.raises(CircuitOpen) as caught:
        await call(breakers, "http://a")
    assert caught.value.retryable
    assert await call(breakers, "http://b") == "ok"  # one circuit per endpoint

    clock.now += 31
    assert breakers.state("http://a") == "half_open"
    with pytest.raises(ToolFailed):
        await call(breakers, "http://a", flaky)  # the probe fails: open again
    assert breakers.state("http://a") == "open"
    clock.now += 31
    assert await call(breakers, "http://a") == "ok"  # the probe succeeds: closed
    assert breakers.state("http://a") == "closed"


async def test_client_errors_do_not_count_and_successes_reset_the_count():
    breakers = CircuitBreakers(failure_threshold=2, clock=Clock())
    for _ in range(5):
        with pytest.raises(ToolFailed):
            await call(breakers, "k", ToolFailed("400", retryable=False))
    assert breakers.state("k") == "closed"
    with pytest.raises(ToolFailed):
        await call(breakers, "k", ToolFailed("500"))
    await call(breakers, "k")
    with pytest.raises(ToolFailed):
        await call(breakers, "k", ToolFailed("500"))
    assert breakers.state("k") == "closed"


async def test_only_one_probe_passes_while_half_open():
    clock = Clock()
    breakers = CircuitBreakers(failure_threshold=1, cooldown_seconds=5, clock=clock)
    with pytest.raises(ToolFailed):
        await call(breakers, "k", ToolFailed("500"))
    clock.now += 6
    async with breakers.guard("k"):
        with pytest.raises(CircuitOpen):
            await call(breakers, "k")  # a second caller while the probe is in flight
    assert breakers.state("k") == "closed"


async def test_working_endpoints_are_forgotten_and_the_table_is_bounded(monkeypatch):
    monkeypatch.setattr(breaker_module, "MAX_CIRCUITS", 3)
    breakers = CircuitBreakers(failure_threshold=5, clock=Clock())
    for key in ("a", "b", "c", "d"):
        with pytest.raises(ToolFailed):
            await call(breakers, key, ToolFailed("503"))
    assert list(breakers._circuits) == ["b", "c", "d"]  # the oldest went first
    await call(breakers, "c")
    assert list(breakers._circuits) == ["b", "d"]  # a success needs no state


async def test_a_refusal_never_echoes_what_a_private_name_resolved_to():
    """Issue 17, defect 12: "refusing to connect to vm (127.0.0.1)" told an agent what an
    internal name resolves to. The refusal says the host is not allowed, nothing more."""
    resolve = resolver(
        {"vm": ["127.0.0.1"], "db.internal": ["10.20.30.40"], "mixed.test": ["1.1.1.1", "fd00::7"]}
    )
    cases = (("vm", "127.0.0.1"), ("db.internal", "10.20.30.40"), ("mixed.test", "fd00::7"))
    for host, address in cases:
        with pytest.raises(AddressRefused) as caught:
            await checked_address(host, 80, AllowList(), resolve)
        message = str(caught.value)
        assert address not in message
        assert host in message and "not allowed" in message
        for detail in ("loopback", "private", "link-local"):
            assert detail not in message
    # A literal address the agent wrote itself may be named, with the reason.
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1.*loopback"):
        await checked_address("127.0.0.1", 80, AllowList(), resolve)


async def test_an_unresolvable_name_reads_like_a_refused_one():
    """Whether an internal name exists is not disclosed either."""
    with pytest.raises(AddressRefused) as refused:
        await checked_address("vm", 80, AllowList(), resolver({"vm": ["127.0.0.1"]}))
    with pytest.raises(AddressRefused) as unresolved:
        await checked_address("no-such-host.invalid", 80, AllowList())  # the system resolver
    assert str(refused.value).replace("vm", "HOST") == str(unresolved.value).replace(
        "no-such-host.invalid", "HOST"
    )
