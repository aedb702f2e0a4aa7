"""The event consumer's heartbeat, and what /readyz reads of it.

Every consumer process (a Celery worker, or a test's harness) has a supervisor thread
that writes a heartbeat to the app's Redis every few seconds: a key
`<prefix>:events:consumer:<id>` (JSON, expiring after 2 × EVENTS_STALL_SECONDS)
listed in the set `<prefix>:events:consumers`. The web processes have no consumer of
their own: their /readyz reads these heartbeats and the queue depths on the events
broker, and fails (naming the reason) when

- no consumer has written a heartbeat in the last EVENTS_STALL_SECONDS (down);
- no consumer's loop has turned in that time (stuck in a handler, or wedged);
- the event queues have held messages for that long with none handled (not draining).
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from kombu import Connection


def _keys(prefix: str) -> tuple[str, str, str]:
    return (f"{prefix}:events:consumers", f"{prefix}:events:consumer:", f"{prefix}:events:backlog_since")


def heartbeat_interval() -> float:
    return max(0.2, min(5.0, settings.EVENTS_STALL_SECONDS / 6))


def heartbeat_write(*, consumer_id: str, state: dict) -> None:
    """Record that this consumer is alive, with its loop's state."""
    from core.redis import get_redis

    members, key_prefix, _ = _keys(settings.EVENTS_QUEUE_PREFIX)
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(
        key_prefix + consumer_id,
        json.dumps({**state, "id": consumer_id, "at": time.time()}),
        ex=max(2, 2 * settings.EVENTS_STALL_SECONDS),
    )
    pipe.sadd(members, consumer_id)
    pipe.execute()


def heartbeat_clear(*, consumer_id: str) -> None:
    from core.redis import get_redis

    members, key_prefix, _ = _keys(settings.EVENTS_QUEUE_PREFIX)
    get_redis().delete(key_prefix + consumer_id)
    get_redis().srem(members, consumer_id)


def heartbeats() -> list[dict]:
    """The heartbeats of the consumers that have not expired (the freshest first)."""
    from core.redis import get_redis

    redis = get_redis()
    members, key_prefix, _ = _keys(settings.EVENTS_QUEUE_PREFIX)
    ids = sorted(member.decode() for member in redis.smembers(members))  # type: ignore[union-attr]  # bytes: decode_responses off
    if not ids:
        return []
    values = redis.mget([key_prefix + consumer_id for consumer_id in ids])
    gone = [consumer_id for consumer_id, value in zip(ids, values, strict=True) if value is None]
    if gone:
        redis.srem(members, *gone)
    beats = [json.loads(value) for value in values if value is not None]
    return sorted(beats, key=lambda beat: beat.get("at", 0), reverse=True)


def queue_depths() -> dict[str, int]:
    """Messages waiting in each of our queues on the events broker (0 for a queue
    not declared yet)."""
    from core.events.consumer import dead_letter_queue, event_queues, retry_queue

    prefix = settings.EVENTS_QUEUE_PREFIX
    names = [q.name for q in [*event_queues(prefix), retry_queue(prefix), dead_letter_queue(prefix)]]
    depths: dict[str, int] = {}
    with Connection(settings.EVENTS_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        for name in names:
            channel = conn.channel()
            try:
                depths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except conn.channel_errors:
                depths[name] = 0
            finally:
                try:
                    channel.close()
                except Exception:  # a channel the broker closed on the 404
                    pass
    return depths


def consumer_status() -> dict:
    """/readyz's `events_consumer` check: {ok, detail, ...figures}."""
    from core.events.consumer import dead_letter_queue, retry_queue
    from core.redis import get_redis

    if not settings.EVENTS_CONSUMER_ENABLED:
        return {"ok": True, "detail": "disabled (EVENTS_CONSUMER_ENABLED is off): not checked"}
    prefix = settings.EVENTS_QUEUE_PREFIX
    stall = settings.EVENTS_STALL_SECONDS
    now = time.time()
    beats = heartbeats()
    depths = queue_depths()
    retrying = depths.pop(retry_queue(prefix).name)
    dead = depths.pop(dead_letter_queue(prefix).name)
    backlog = sum(depths.values())
    figures = {
        "consumers": len(beats),
        "backlog": backlog,
        "retrying": retrying,
        "dead_letters_queued": dead,
    }
    live = [beat for beat in beats if now - beat["at"] <= stall]
    if beats:
        figures["heartbeat_age_s"] = round(now - beats[0]["at"], 2)
        figures["restarts"] = sum(beat.get("restarts", 0) for beat in beats)
        figures["handled"] = sum(beat.get("handled", 0) for beat in beats)

    _, _, since_key = _keys(prefix)
    redis = get_redis()
    if backlog:
        redis.set(since_key, str(now), nx=True, ex=24 * 3600)
        backlog_since = float(redis.get(since_key) or now)
    else:
        redis.delete(since_key)
        backlog_since = now

    if not live:
        detail = "consumer down: no heartbeat" + (
            f" for {figures['heartbeat_age_s']:.0f}s" if beats else " (no worker with the event consumer is running)"
        )
        return {"ok": False, "detail": detail, **figures}
    turning = [beat for beat in live if beat.get("running") and now - beat.get("loop_at", 0) <= stall]
    if not turning:
        busy = [beat for beat in live if beat.get("busy_since")]
        if busy:
            beat = busy[0]
            detail = (
                f"consumer stuck: handling event {beat.get('busy_event')!r} "
                f"for {now - beat['busy_since']:.0f}s (over {stall}s)"
            )
        else:
            detail = f"consumer stuck: its loop has not turned for over {stall}s"
        return {"ok": False, "detail": detail, **figures}
    last_handled = max(beat.get("last_handled_at") or 0 for beat in live)
    if backlog and now - backlog_since > stall and now - last_handled > stall:
        detail = f"consumer stuck: {backlog} event(s) waiting for {now - backlog_since:.0f}s, none handled"
        return {"ok": False, "detail": detail, **figures}
    return {"ok": True, "detail": f"{len(live)} consumer(s) alive", **figures}
