"""Unknown query parameters are refused: ``GET /runs?trigerr=manual`` is a 422 naming
``query.trigerr``, not a silently unfiltered list.

:func:`reject_unknown_query` is an application-wide dependency; the names a route accepts
are read from its own declared parameters (its dependencies' included), so a parameter added
to a route is known at once.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


async def reject_unknown_query(request: Request) -> None:
    """422 (``query.<name>`` for each) when the query string names a parameter the route
    does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = accepted_query(route)
    unknown = sorted({name for name in request.query_params if name not in known})
    if not unknown:
        return
    takes = ", ".join(sorted(known)) or "none"
    raise RequestValidationError(
        [
            {
                "loc": ("query", name),
                "msg": f"unknown query parameter (this route takes: {takes})",
                "type": "unknown_parameter",
            }
            for name in unknown
        ]
    )


def accepted_query(route: APIRoute) -> frozenset[str]:
    """The query parameter names ``route`` declares (aliases as sent on the wire), computed
    once per route and kept on it."""
    names: frozenset[str] | None = getattr(route, "_accepted_query", None)
    if names is None:
        found: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(param.alias for param in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = frozenset(found)
        route._accepted_query = names  # type: ignore[attr-defined]
    return names
