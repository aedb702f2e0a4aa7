"""Database helpers shared by the apps."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection

logger = logging.getLogger("huodong.db")

T = TypeVar("T")

# MySQL/MariaDB: deadlock victim, lock wait timeout. InnoDB rolls back the whole
# transaction for these, so the whole request is safe to run again.
_RETRYABLE_MYSQL_ERRORS = {1213, 1205}


def db_retry(fn: Callable[[], T], *, attempts: int = 5) -> T:
    """Run a whole transaction again when the database killed it as a deadlock
    victim or on a lock timeout. Only outside any atomic block (the transaction
    must be ours to retry)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            code = exc.args[0] if exc.args else None
            retryable = connection.vendor == "mysql" and code in _RETRYABLE_MYSQL_ERRORS
            if not retryable or attempt == attempts or connection.in_atomic_block:
                raise
            logger.warning("retrying transaction", extra={"attempt": attempt, "mysql_error": code})
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")
