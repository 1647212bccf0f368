"""Any other address under ``/ui``: the console's 404 page. Added to the router after every
page (:mod:`api.console`), so that every real page matches first."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.console.routing import error_page
from engine.errors import NotFound


async def not_found(request: Request, rest: str) -> Response:
    return error_page(request, NotFound("there is nothing at this address"))
