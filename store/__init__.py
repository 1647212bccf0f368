"""Every SQL statement of Ordinaut, one module per table or concern.

Functions take an open connection (the caller owns the transaction) and are named by what
they do: ``tasks.insert_task(conn, ...)``, ``due_work.lease_batch(conn, ...)``.
"""
