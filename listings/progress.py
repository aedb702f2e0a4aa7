"""Live progress of running imports, in Redis (the job row is only written at the
end, outside the import's transaction)."""

from __future__ import annotations

from core.redis import get_redis

TTL_SECONDS = 24 * 3600


def _key(job_id: int) -> str:
    return f"listings:import:{job_id}:progress"


def progress_set(*, job_id: int, processed: int, total: int | None) -> None:
    redis = get_redis()
    redis.hset(_key(job_id), mapping={"processed": processed, "total": -1 if total is None else total})
    redis.expire(_key(job_id), TTL_SECONDS)


def progress_clear(*, job_id: int) -> None:
    get_redis().delete(_key(job_id))


def progress_get(*, job_id: int) -> tuple[int, int | None] | None:
    raw = get_redis().hgetall(_key(job_id))
    if not raw:
        return None
    total = int(raw.get(b"total", b"-1"))
    return int(raw.get(b"processed", b"0")), (None if total < 0 else total)
