"""A deterministic text description of the database schema, for the migration snapshot test.

Catalog queries rather than ``pg_dump``: the output must not change with the server or
client version, only with the schema.
"""

from __future__ import annotations

from store.db import Connection

_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type, a.attnotnull AS not_null,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr, a.attidentity AS identity
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
 ORDER BY c.relname, a.attnum
"""

_TABLE_OPTIONS = """
SELECT c.relname AS table_name, array_to_string(c.reloptions, ', ') AS options
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.reloptions IS NOT NULL
 ORDER BY c.relname
"""

_CONSTRAINTS = """
SELECT c.relname AS table_name, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public'
 ORDER BY c.relname, k.conname
"""

_INDEXES = """
SELECT tablename AS table_name, indexname AS name, indexdef AS definition
  FROM pg_indexes WHERE schemaname = 'public'
 ORDER BY tablename, indexname
"""

_VIEWS = """
SELECT viewname AS name, definition FROM pg_views WHERE schemaname = 'public'
 ORDER BY viewname
"""


async def describe_schema(conn: Connection) -> str:
    """The public schema as stable text: tables, columns, options, constraints, indexes, views."""
    lines: list[str] = []
    table = None
    for row in await (await conn.execute(_COLUMNS)).fetchall():
        if row["table_name"] != table:
            table = row["table_name"]
            lines.append(f"table {table}")
        column = f"  column {row['column_name']} {row['column_type']}"
        column += " not null" if row["not_null"] else ""
        column += f" default {row['default_expr']}" if row["default_expr"] else ""
        column += " identity" if row["identity"] else ""
        lines.append(column)
    for row in await (await conn.execute(_TABLE_OPTIONS)).fetchall():
        lines.append(f"options {row['table_name']}: {row['options']}")
    for row in await (await conn.execute(_CONSTRAINTS)).fetchall():
        lines.append(f"constraint {row['table_name']}.{row['name']}: {row['definition']}")
    for row in await (await conn.execute(_INDEXES)).fetchall():
        lines.append(f"index {row['table_name']}.{row['name']}: {row['definition']}")
    for row in await (await conn.execute(_VIEWS)).fetchall():
        body = " ".join(row["definition"].split())
        lines.append(f"view {row['name']}: {body}")
    return "\n".join(lines) + "\n"
