"""``/docs`` works offline: the page loads Swagger UI from the API itself, never a CDN."""

from __future__ import annotations

import re

import httpx

from api.docs import ASSETS


async def test_docs_load_every_asset_from_the_api(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs", headers={"Authorization": ""})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ['"]([^'"]+)['"]""", page.text)
    referenced = [a or b for a, b in urls]
    assert referenced, page.text
    assert not [u for u in referenced if "://" in u or u.startswith("//")], referenced
    for url in referenced:
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    js = await client.get("/docs/static/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert js.content == (ASSETS / "swagger-ui-bundle.js").read_bytes()


async def test_redoc_is_not_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/redoc")).status_code == 404
