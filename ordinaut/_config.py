"""The client's configuration: its arguments, else the environment.

This is the one module of the package that reads the environment. The rest of Ordinaut
reads it only in the CLI entry (``ops/cli.py``), which builds the settings once; the public
client has no such entry: it is imported by other people's programs, so it is its own edge
and reads its own variables, as every SDK does (``OPENAI_API_KEY``, ``AWS_REGION`` ...):

- ``ORDINAUT_URL``: the API's base URL (default ``http://127.0.0.1:8080``);
- ``ORDINAUT_TOKEN``: the bearer token (unset or empty: none is sent).

Arguments win over the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
URL_VARIABLE = "ORDINAUT_URL"
TOKEN_VARIABLE = "ORDINAUT_TOKEN"


@dataclass(frozen=True)
class Config:
    """What a client needs to reach the API."""

    url: str
    token: str | None = field(repr=False)
    timeout: float
    max_retries: int

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        headers = {"User-Agent": f"ordinaut-python/{_version()}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def resolve(
    url: str | None,
    token: str | None,
    *,
    timeout: float,
    max_retries: int,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The configuration from the arguments, the environment for those that are None;
    ValueError for a URL that is not http(s), a timeout ≤ 0 or a negative max_retries."""
    env = os.environ if environ is None else environ
    chosen_url = url or env.get(URL_VARIABLE) or DEFAULT_URL
    if urlsplit(chosen_url).scheme not in ("http", "https"):
        raise ValueError(f"the Ordinaut URL must start with http:// or https://: {chosen_url!r}")
    if timeout <= 0:
        raise ValueError(f"timeout must be greater than 0, not {timeout!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be 0 or more, not {max_retries!r}")
    chosen_token = token if token is not None else env.get(TOKEN_VARIABLE)
    return Config(chosen_url, chosen_token or None, float(timeout), max_retries)


def _version() -> str:
    try:
        return metadata.version("ordinaut")
    except metadata.PackageNotFoundError:
        return "unknown"
