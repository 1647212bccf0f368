"""The settings type and its parser: pure data, no I/O.

The CLI (``ops/cli.py``, the only module of the server that reads ``os.environ``; the
public client reads its own two variables in ``ordinaut/_config.py``) builds one frozen
:class:`Settings` with :func:`load_settings` in ``main()`` and every process passes it
down. A bad value raises :class:`SettingsError` whose message is one line that names the
variable and the reason; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from engine.redaction import mask_passwords

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")


class SettingsError(ValueError):
    """A configuration value is invalid; the message is one line meant for the operator."""


@dataclass(frozen=True)
class Settings:
    """Configuration of every Ordinaut process (see the README's configuration table)."""

    database_url: str | None = None
    home: Path = Path(".ordinaut")
    bootstrap_admin_token: str | None = field(default=None, repr=False)
    default_timezone: str = "UTC"
    log_level: str = "INFO"
    log_format: str = "json"
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 3600.0
    shutdown_grace_seconds: float = 30.0
    run_retention_days: int = 30
    max_body_bytes: int = 1024 * 1024
    http_allow: tuple[str, ...] = ()
    scheduler_tick_seconds: float = 1.0
    scheduler_horizon_seconds: float = 30.0
    catch_up_grace_seconds: float = 60.0
    max_output_bytes: int = 64 * 1024
    max_value_bytes: int = 8 * 1024 * 1024
    http_max_response_bytes: int = 1024 * 1024
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    rate_limit_per_minute: int = 600
    pool_max_size: int = 10
    pool_timeout_seconds: float = 5.0
    audit_retention_days: int = 90
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 8
    webhook_retry_base_seconds: float = 5.0
    public_url: str | None = None
    mcp_allowed_hosts: tuple[str, ...] = ()
    mcp_read_only: bool = False
    instance_id: str | None = None
    console_session_hours: float = 12.0
    # How often an open run stream asks whether its token (or console session) still
    # grants it: a revoked token's stream ends within this many seconds.
    stream_recheck_seconds: float = 15.0
    # Per-agent quotas when the agent has no override (PATCH /agents/{id} "quotas").
    quota_active_tasks: int = 10000
    quota_queued_runs: int = 10000
    quota_concurrent_runs: int = 1000
    quota_event_fanout: int = 1000

    def with_database_url(self, url: str) -> Settings:
        """A copy pointing at ``url`` (used once the embedded Postgres is up)."""
        return replace(self, database_url=url)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from the variables in ``env``."""
    reader = _Reader(env)
    settings = Settings(
        database_url=reader.get("DATABASE_URL", _database_url, None),
        home=reader.get("ORDINAUT_HOME", _path, Path(".ordinaut")),
        bootstrap_admin_token=reader.get("ORDINAUT_BOOTSTRAP_ADMIN_TOKEN", _token, None),
        default_timezone=reader.get("ORDINAUT_DEFAULT_TIMEZONE", _timezone, "UTC"),
        log_level=reader.get("ORDINAUT_LOG_LEVEL", _choice(LOG_LEVELS, upper=True), "INFO"),
        log_format=reader.get("ORDINAUT_LOG_FORMAT", _choice(LOG_FORMATS), "json"),
        lease_seconds=reader.get("ORDINAUT_LEASE_SECONDS", _positive_float, 30.0),
        poll_seconds=reader.get("ORDINAUT_POLL_SECONDS", _positive_float, 1.0),
        retry_base_seconds=reader.get("ORDINAUT_RETRY_BASE_SECONDS", _positive_float, 1.0),
        retry_max_seconds=reader.get("ORDINAUT_RETRY_MAX_SECONDS", _positive_float, 3600.0),
        shutdown_grace_seconds=reader.get(
            "ORDINAUT_SHUTDOWN_GRACE_SECONDS", _non_negative_float, 30.0
        ),
        run_retention_days=reader.get("ORDINAUT_RUN_RETENTION_DAYS", _days, 30),
        max_body_bytes=reader.get("ORDINAUT_MAX_BODY_BYTES", _positive_int, 1024 * 1024),
        http_allow=reader.get("ORDINAUT_HTTP_ALLOW", _host_list, ()),
        scheduler_tick_seconds=reader.get("ORDINAUT_SCHEDULER_TICK_SECONDS", _positive_float, 1.0),
        scheduler_horizon_seconds=reader.get(
            "ORDINAUT_SCHEDULER_HORIZON_SECONDS", _positive_float, 30.0
        ),
        catch_up_grace_seconds=reader.get(
            "ORDINAUT_CATCH_UP_GRACE_SECONDS", _non_negative_float, 60.0
        ),
        max_output_bytes=reader.get("ORDINAUT_MAX_OUTPUT_BYTES", _positive_int, 64 * 1024),
        max_value_bytes=reader.get("ORDINAUT_MAX_VALUE_BYTES", _positive_int, 8 * 1024 * 1024),
        http_max_response_bytes=reader.get(
            "ORDINAUT_HTTP_MAX_RESPONSE_BYTES", _positive_int, 1024 * 1024
        ),
        breaker_failures=reader.get("ORDINAUT_BREAKER_FAILURES", _positive_int, 5),
        breaker_cooldown_seconds=reader.get(
            "ORDINAUT_BREAKER_COOLDOWN_SECONDS", _non_negative_float, 30.0
        ),
        rate_limit_per_minute=reader.get("ORDINAUT_RATE_LIMIT_PER_MINUTE", _non_negative_int, 600),
        pool_max_size=reader.get("ORDINAUT_POOL_MAX_SIZE", _positive_int, 10),
        pool_timeout_seconds=reader.get("ORDINAUT_POOL_TIMEOUT_SECONDS", _positive_float, 5.0),
        audit_retention_days=reader.get("ORDINAUT_AUDIT_RETENTION_DAYS", _days, 90),
        webhook_timeout_seconds=reader.get(
            "ORDINAUT_WEBHOOK_TIMEOUT_SECONDS", _positive_float, 10.0
        ),
        webhook_concurrency=reader.get("ORDINAUT_WEBHOOK_CONCURRENCY", _positive_int, 8),
        webhook_retry_base_seconds=reader.get(
            "ORDINAUT_WEBHOOK_RETRY_BASE_SECONDS", _positive_float, 5.0
        ),
        public_url=reader.get("ORDINAUT_PUBLIC_URL", _public_url, None),
        mcp_allowed_hosts=reader.get("ORDINAUT_MCP_ALLOWED_HOSTS", _allowed_hosts, ()),
        mcp_read_only=reader.get("ORDINAUT_MCP_READ_ONLY", _boolean, False),
        instance_id=reader.get("ORDINAUT_INSTANCE_ID", _instance_id, None),
        console_session_hours=reader.get("ORDINAUT_CONSOLE_SESSION_HOURS", _hours, 12.0),
        stream_recheck_seconds=reader.get("ORDINAUT_STREAM_RECHECK_SECONDS", _positive_float, 15.0),
        quota_active_tasks=reader.get("ORDINAUT_QUOTA_ACTIVE_TASKS", _positive_int, 10000),
        quota_queued_runs=reader.get("ORDINAUT_QUOTA_QUEUED_RUNS", _positive_int, 10000),
        quota_concurrent_runs=reader.get("ORDINAUT_QUOTA_CONCURRENT_RUNS", _positive_int, 1000),
        quota_event_fanout=reader.get("ORDINAUT_QUOTA_EVENT_FANOUT", _positive_int, 1000),
    )
    return settings


class _Reader:
    """Reads one variable, parses it, and turns a parse failure into a one-line error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            shown = "<hidden>" if "TOKEN" in name else mask_passwords(repr(raw))
            raise SettingsError(f"invalid {name}={shown}: {mask_passwords(str(exc))}") from None


def _database_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must start with postgresql:// (or postgres://)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"malformed port ({exc})") from None
    if not (parts.hostname or parts.path.strip("/") or "host=" in parts.query):
        raise ValueError("names neither a host nor a database")
    return raw


_INSTANCE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _instance_id(raw: str) -> str:
    if not _INSTANCE_ID.fullmatch(raw):
        raise ValueError("must be 1 to 64 of A-Z a-z 0-9 _ . -")
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters long")
    return raw


def _timezone(raw: str) -> str:
    from engine.timezones import get_zone  # the engine knows where the newest tz data lives

    get_zone(raw)
    return raw


def _choice(allowed: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


# Durations go into PostgreSQL intervals added to now(): an "inf" or 1e12 s would be accepted
# here and fail at every use (timestamp out of range). Ten years is more than any needs.
MAX_SECONDS = 10 * 365 * 86400
MAX_DAYS = 100 * 365


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= MAX_SECONDS:
        raise ValueError(f"must be a number greater than 0 and at most {MAX_SECONDS} (10 years)")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"must be a number of at least 0 and at most {MAX_SECONDS} (10 years)")
    return value


def _hours(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= MAX_SECONDS / 3600:
        raise ValueError(f"must be a number greater than 0 and at most {MAX_SECONDS // 3600}")
    return value


def _days(raw: str) -> int:
    value = int(raw)
    if not 0 < value <= MAX_DAYS:
        raise ValueError(f"must be a whole number greater than 0 and at most {MAX_DAYS}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a whole number greater than 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number of at least 0")
    return value


def _host_list(raw: str) -> tuple[str, ...]:
    """Comma-separated hostnames, IP addresses or CIDR networks."""
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in entries:
        if any(ch.isdigit() for ch in entry) and ("/" in entry or ":" in entry):
            ipaddress.ip_network(entry, strict=False)
    return entries


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"must be one of {', '.join(_TRUE + _FALSE)}")
    return value in _TRUE


def _public_url(raw: str) -> str:
    """The origin clients reach the API at: ``http(s)://host[:port]``, nothing after it."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"malformed port ({exc})") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("must be an origin only (scheme, host and port; no path or query)")
    return f"{parts.scheme}://{parts.netloc}"


# A host as a Host header carries it: a name, an IPv4 address or a bracketed IPv6 address,
# optionally with ``:port`` or ``:*`` (any port).
_HOST_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?:\d{1,5}|\*))?$"
)


def _allowed_hosts(raw: str) -> tuple[str, ...]:
    """Comma-separated ``host``, ``host:port`` or ``host:*`` entries, or ``*`` (any host)."""
    entries = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for entry in entries:
        if entry != "*" and not _HOST_PATTERN.match(entry):
            raise ValueError(f"{entry!r} is not a host, host:port or host:* entry")
    return entries
