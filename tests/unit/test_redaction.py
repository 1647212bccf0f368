"""One helper masks passwords wherever a database URL may be printed or logged."""

from __future__ import annotations

import io
import json
import logging

import pytest

from engine.errors import first_line
from engine.redaction import mask_passwords
from engine.settings import SettingsError, load_settings
from observability.logging import JsonFormatter, TextFormatter
from ops.terminal import say

SECRET = "S3cretPassw0rd"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:S3cretPassw0rd@db/x", "postgresql://app:***@db/x"),
        (
            "postgres://app:p@ss@db:5432/x?sslmode=require",
            "postgres://app:***@db:5432/x?sslmode=require",
        ),
        (
            "invalid DATABASE_URL='postgresq://app:S3cretPassw0rd@db/x'",
            "invalid DATABASE_URL='postgresq://app:***@db/x'",
        ),
        ('after "postgresql://u:S3cret@h/d" in', 'after "postgresql://u:***@h/d" in'),
        ("host=db password=S3cret user=app", "host=db password=*** user=app"),
        ("PASSWORD = 'a b' dbname=x", "PASSWORD = *** dbname=x"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
        ("https://example.com/path@v2", "https://example.com/path@v2"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_mask_passwords(text: str, masked: str) -> None:
    assert mask_passwords(text) == masked


def test_a_settings_error_masks_the_url() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"DATABASE_URL": f"postgresq://app:{SECRET}@db/x"})
    assert SECRET not in str(raised.value)
    assert "postgresq://app:***@db/x" in str(raised.value)


def test_one_line_error_reasons_mask_connection_strings() -> None:
    driver = ValueError(f'missing "=" after "postgresql://app:{SECRET}@db/x" in conninfo\nDETAIL')
    assert SECRET not in first_line(driver) and "app:***@db" in first_line(driver)


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_log_lines_mask_passwords_in_messages_extras_and_exceptions(formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        url = f"postgresql://app:{SECRET}@db/x"
        try:
            raise RuntimeError(f"cannot reach {url}")
        except RuntimeError:
            logger.exception("connecting to %s failed", url, extra={"target": url})
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert SECRET not in output and "app:***@db" in output
    if isinstance(formatter, JsonFormatter):
        assert json.loads(output)["target"] == "postgresql://app:***@db/x"


def test_terminal_messages_mask_passwords(capsys: pytest.CaptureFixture[str]) -> None:
    say(f"PostgreSQL did not start: postgresql://ordinaut:{SECRET}@127.0.0.1:5/o")
    assert SECRET not in capsys.readouterr().err
