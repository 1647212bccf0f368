"""The pure core: schedules, templates, pipelines, catalog, validation, tools."""
