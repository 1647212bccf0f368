"""Ordinaut's agent tokens as the MCP SDK's ``TokenVerifier``."""

from __future__ import annotations

from mcp.server.auth.provider import AccessToken

from api.deps import principal_for_token
from observability.logging import bind_log_context
from store.db import Pool


class AgentTokenVerifier:
    """Verifies a bearer token with the REST API's own look-up (by its hash, in one
    indexed statement, no cache: a revocation counts on the next request).

    The raw token stays in :attr:`AccessToken.token`: the tools forward it to the REST
    API, which authenticates it again and applies its scopes. A database that cannot be
    reached raises :class:`~engine.errors.StoreUnavailable` (the endpoint answers 503),
    never a 401 that would make a client drop a good token.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def verify_token(self, token: str) -> AccessToken | None:
        async with self.pool.connection() as conn:
            principal = await principal_for_token(conn, token)
        if principal is None:
            return None
        bind_log_context(agent_id=str(principal.agent_id))  # as REST requests log it
        return AccessToken(
            token=token,
            client_id=str(principal.agent_id),
            scopes=sorted(principal.scopes),
            subject=principal.name,
        )
