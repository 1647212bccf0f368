"""Operations: the CLI, settings, embedded Postgres, process supervision, deployment."""
