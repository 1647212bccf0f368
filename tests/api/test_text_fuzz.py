"""A little fuzzing of text (issue 17, defect 10): any code point — NUL, lone surrogates,
private use, unassigned — in any string field of a task, on create and PATCH, is a 201/200
or a 422, never a 5xx. schemathesis (tests/api/test_schemathesis.py) does not generate lone
surrogates, which is how the 500s on ``title``, ``description``, ``concurrency_key`` and
``dedupe_key`` went unnoticed."""

from __future__ import annotations

import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.document import TASK_PROPERTIES
from tests.api.conftest import quick_task

# Any code point around one of the troublesome ones (hypothesis seldom draws those itself).
ODD = ["\x00", "\ud800", "\udbff", "\udc80", "\udfff", "\ufeff", "\u2028", "\U0010ffff"]
_ANY = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
ANY_TEXT = st.builds(lambda a, odd, b: a + odd + b, _ANY, st.sampled_from(ODD), _ANY)


def _is_text(schema: dict[str, object]) -> bool:
    kinds = schema.get("type")
    return "string" in (kinds if isinstance(kinds, list) else [kinds])


TEXT_FIELDS = sorted(
    name for name, schema in TASK_PROPERTIES.items() if _is_text(schema) and name != "created_by"
)


def cases() -> list[tuple[str, str]]:
    """(field, text) pairs drawn by hypothesis (run synchronously, then sent by the test)."""
    found: list[tuple[str, str]] = []

    @settings(max_examples=25, deadline=None, database=None)
    @given(field=st.sampled_from(TEXT_FIELDS), text=ANY_TEXT)
    def draw(field: str, text: str) -> None:
        found.append((field, text))

    draw()
    return found


async def test_any_text_in_any_field_is_never_a_server_error(client: httpx.AsyncClient):
    created = await client.post("/tasks", json=quick_task(title="target"))
    task_id = created.json()["id"]
    for field, text in cases():
        body = json.dumps(quick_task(**{field: text})).encode()  # ASCII: \\udXXX escapes
        created = await client.post("/tasks", content=body)
        patched = await client.patch(f"/tasks/{task_id}", content=json.dumps({field: text}))
        for response in (created, patched):
            assert response.status_code < 500, (field, text, response.text)
    assert TEXT_FIELDS == [
        "concurrency_key",
        "dedupe_key",
        "description",
        "schedule_expr",
        "timezone",
        "title",
        "webhook_url",
    ]
