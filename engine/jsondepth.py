"""How deeply a JSON value nests.

Python's ``json``, jsonschema and the API's serialisers recurse once per level, so a value
nested a thousand deep (a request body, a JMESPath literal, a tool's response) would exhaust
the interpreter's recursion somewhere far from where it came in. Ordinaut refuses such values
where they enter: request bodies, a step's rendered arguments and a tool's output.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 64


def nests_deeper_than(value: Any, levels: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` has more than ``levels`` nested arrays/objects (iterative, so any
    depth is safe to ask about)."""
    if isinstance(value, dict) and levels > 0:  # fast path: a flat object, most outputs
        for item in value.values():
            if isinstance(item, dict | list):
                break
        else:
            return False
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= levels:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend(
                (child, depth + 1) for child in children if isinstance(child, dict | list)
            )
    return False
