"""Ordinaut as an MCP server: the REST API's operations as MCP tools.

- :mod:`api.mcp.tools`: the tools, one declaration each; :mod:`api.mcp.calls`: what each
  does, a REST call made through the Python client; :mod:`api.mcp.schemas`: their schemas,
  derived from the API's;
- :mod:`api.mcp.server`: the SDK server that lists and runs them per caller;
- :mod:`api.mcp.http`: ``/mcp`` on the API process (streamable HTTP, agent tokens);
- :mod:`api.mcp.stdio`: the same tools over stdio, calling a running API (``ordinaut mcp``).
"""
