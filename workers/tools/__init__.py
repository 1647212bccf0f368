"""Tool transports: how a worker reaches the tools a pipeline's steps use.

=========  =====================================================================
transport  module
=========  =====================================================================
builtin    :mod:`.builtin` (``debug.*``; ``http.request`` from :mod:`.http`;
           ``events.publish`` from :mod:`.events`, which owns the database write)
http       :mod:`.http` — JSON POST to the tool's ``endpoint``
mcp        :mod:`.mcp` — real MCP (stdio or streamable HTTP) through the ``mcp`` SDK
=========  =====================================================================

:class:`.router.ToolRouter` is the :class:`~engine.pipeline.ToolCaller` the worker hands to
the executor; :func:`.transports.build_transports` assembles it from the settings. The SSRF
guard (:mod:`.ssrf`) and the circuit breakers (:mod:`.breaker`) serve the network transports.
"""
