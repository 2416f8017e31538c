"""Operations: our own record of every long task (Celery only carries it)."""
