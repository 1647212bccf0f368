"""What the API does, once: the bodies of the REST routes that the web console performs too.

A router parses the HTTP request and calls an operation here; the console parses its form
and calls the same operation, with the same :class:`api.deps.Principal`. Ownership (another
agent's object is a 404), legal state changes (409) and validation (422) are therefore
decided in one place for both. Operations raise the engine's errors and return store rows,
except runs, which both answer as ``GET /runs/{id}`` presents them (:mod:`api.operations.runs`).
"""
