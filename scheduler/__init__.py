"""The scheduler process: expands schedules into due_work, one tick at a time."""
