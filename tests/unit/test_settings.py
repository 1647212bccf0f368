from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import SettingsError, load_settings


def test_defaults_follow_the_design():
    settings = load_settings({})
    assert settings.database_url is None
    assert settings.home == Path(".ordinaut")
    assert settings.default_timezone == "UTC"
    assert settings.lease_seconds == 30
    assert settings.poll_seconds == 1
    assert settings.retry_base_seconds == 1
    assert settings.shutdown_grace_seconds == 30
    assert settings.run_retention_days == 30
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.log_format == "json"
    assert settings.http_allow == ()


def test_values_are_parsed():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u:p@db:5433/ordinaut",
            "ORDINAUT_DEFAULT_TIMEZONE": "Europe/Chisinau",
            "ORDINAUT_LEASE_SECONDS": "12.5",
            "ORDINAUT_LOG_FORMAT": "TEXT",
            "ORDINAUT_LOG_LEVEL": "debug",
            "ORDINAUT_HTTP_ALLOW": "127.0.0.1, 10.0.0.0/8 ,internal.example",
            "ORDINAUT_STREAM_RECHECK_SECONDS": "0.5",
        }
    )
    assert settings.database_url == "postgresql://u:p@db:5433/ordinaut"
    assert settings.default_timezone == "Europe/Chisinau"
    assert settings.lease_seconds == 12.5
    assert settings.log_format == "text"
    assert settings.log_level == "DEBUG"
    assert settings.http_allow == ("127.0.0.1", "10.0.0.0/8", "internal.example")
    assert settings.stream_recheck_seconds == 0.5


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("DATABASE_URL", "mysql://x/y", "postgresql://"),
        ("DATABASE_URL", "postgresql://host:notaport/db", "port"),
        ("ORDINAUT_LEASE_SECONDS", "-1", "greater than 0"),
        ("ORDINAUT_LEASE_SECONDS", "soon", "could not convert"),
        ("ORDINAUT_POLL_SECONDS", "0", "greater than 0"),
        ("ORDINAUT_STREAM_RECHECK_SECONDS", "0", "greater than 0"),
        ("ORDINAUT_LEASE_SECONDS", "inf", "at most"),
        ("ORDINAUT_LEASE_SECONDS", "nan", "greater than 0"),
        ("ORDINAUT_SCHEDULER_HORIZON_SECONDS", "1e12", "at most"),
        ("ORDINAUT_CATCH_UP_GRACE_SECONDS", "-inf", "at least 0"),
        ("ORDINAUT_RUN_RETENTION_DAYS", "1000000000", "at most"),
        ("ORDINAUT_SHUTDOWN_GRACE_SECONDS", "-5", "at least 0"),
        ("ORDINAUT_RUN_RETENTION_DAYS", "1.5", "invalid literal"),
        ("ORDINAUT_MAX_BODY_BYTES", "0", "greater than 0"),
        ("ORDINAUT_DEFAULT_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("ORDINAUT_LOG_FORMAT", "xml", "json, text"),
        ("ORDINAUT_HTTP_ALLOW", "10.0.0.0/33", "10.0.0.0/33"),
        ("ORDINAUT_BOOTSTRAP_ADMIN_TOKEN", "short", "16 characters"),
        ("ORDINAUT_PUBLIC_URL", "ordinaut.example.com", "http:// or https://"),
        ("ORDINAUT_PUBLIC_URL", "https://ordinaut.example.com/api", "origin only"),
        ("ORDINAUT_PUBLIC_URL", "https://ordinaut.example.com:99999", "port"),
        ("ORDINAUT_MCP_ALLOWED_HOSTS", "https://evil.example", "not a host"),
        ("ORDINAUT_MCP_ALLOWED_HOSTS", "a.example, b.example/x", "not a host"),
        ("ORDINAUT_MCP_READ_ONLY", "maybe", "true"),
    ],
)
def test_a_bad_value_is_one_clear_line(name, value, reason):
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    message = str(caught.value)
    assert name in message
    assert reason in message
    assert "\n" not in message


def test_the_admin_token_is_never_echoed():
    with pytest.raises(SettingsError) as caught:
        load_settings({"ORDINAUT_BOOTSTRAP_ADMIN_TOKEN": "tiny"})
    assert "tiny" not in str(caught.value)


def test_the_mcp_settings():
    assert load_settings({}).mcp_read_only is False
    assert load_settings({}).mcp_allowed_hosts == ()
    assert load_settings({}).public_url is None
    settings = load_settings(
        {
            "ORDINAUT_PUBLIC_URL": "https://Ordinaut.example.com:8443/",
            "ORDINAUT_MCP_ALLOWED_HOSTS": "LB.internal:8443, [::1]:*, *",
            "ORDINAUT_MCP_READ_ONLY": "yes",
        }
    )
    assert settings.public_url == "https://Ordinaut.example.com:8443"
    assert settings.mcp_allowed_hosts == ("lb.internal:8443", "[::1]:*", "*")
    assert settings.mcp_read_only is True
