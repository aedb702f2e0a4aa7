"""Shared by the event benchmarks (attribution.activations_per_s,
payments.results_per_s): one real consumer draining a queued backlog.

Fair baseline: the same broker (EVENTS_BROKER_URL), the same consumer (`run_consumer`,
the worker's own, with its batch settings), the same connection handling (a fresh
consumer per drain, timed from its consume-ready to its last ack), and the same
bodies: the no-op events are made by the same function as the measured ones (same
fields, same sizes) and checked against the same contract, and go through the same
consumer path (a batch handler that does nothing when the measured type has a batch
handler, `noop_like`); only the handler differs (it does nothing). So the ratio is
what the handler costs beside the mechanism.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from bench import support

NOOP = "bench.noop"
# Five rounds: single rounds of either event figure spread 0.48-0.74 on a noisy 2-core machine.
ROUNDS = int(os.environ.get("BENCH_EVENTS_ROUNDS", "5"))
LAST_BATCH_FILL: list[float] = [0.0]  # the last drain's events per batch (printed with each round)


def use_own_queues() -> None:
    """Queues of this run only (before Django's settings are read)."""
    os.environ.setdefault("EVENTS_QUEUE_PREFIX", f"bench-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def noop_like(routing_key: str) -> Iterator[str]:
    """Register `bench.noop`: a handler that does nothing, on the exchange and with the
    contract schema of `routing_key`, through the same consumer path: if `routing_key`
    has a batch handler (one savepoint per batch, markers in one insert), the no-op
    type gets a batch handler that does nothing too; if not, neither does it."""
    from core.events import registry
    from core.events.contracts import CONTRACTS

    measured = registry.lookup(routing_key)
    if measured is None:
        raise RuntimeError(f"{routing_key!r} has no handler registered")  # (apps register them at setup)
    exchange, schema = CONTRACTS[routing_key]
    batch = (lambda payloads: None) if measured.batch_handler is not None else None
    registry.register(NOOP, lambda payload: None, batch_handler=batch, exchange=exchange, schema=schema)
    try:
        yield NOOP
    finally:
        registry.unregister(NOOP)


def drain(exchange: str, routing_key: str, bodies: list[bytes], *, batch_size: int | None = None) -> float:
    """Queue `bodies`, then run one consumer until it has acked them all. Returns the
    events per second, from the consumer's consume-ready to its last ack."""
    from django.conf import settings
    from kombu import Connection

    from core.events.consumer import declare_topology, run_consumer
    from core.events.publish import publish_event

    with Connection(settings.EVENTS_BROKER_URL) as conn:
        declare_topology(conn, settings.EVENTS_QUEUE_PREFIX)  # queues first, or the events are dropped
        for body in bodies:
            publish_event(exchange, routing_key, body, connection=conn)
    saved = settings.EVENTS_BATCH_SIZE
    if batch_size is not None:
        settings.EVENTS_BATCH_SIZE = batch_size
    try:
        from core.boot import heap_freeze

        heap_freeze()  # as the worker does when its consumer starts (core/events/consumer.py)
        consumer = run_consumer()
    finally:
        settings.EVENTS_BATCH_SIZE = saved
    ready_at: list[float] = []
    on_ready = consumer.on_consume_ready

    def stamp(*args, **kwargs):
        ready_at.append(time.time())
        on_ready(*args, **kwargs)

    consumer.on_consume_ready = stamp
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 900
        while consumer.handled < len(bodies):
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"consumer handled {consumer.handled} of {len(bodies)}")
            time.sleep(0.01)
        LAST_BATCH_FILL[0] = consumer.handled / max(consumer.batches, 1)
        return len(bodies) / (consumer.last_handled_at - ready_at[0])
    finally:
        consumer.should_stop = True
        thread.join(timeout=10)
        consumer.connection.release()


def interleaved(
    measured: Callable[[], float], baseline: Callable[[], float], *, rounds: int = ROUNDS, label: str = ""
) -> tuple[float, float, list[tuple[float, float]]]:
    """Rounds of both, alternating which goes first (load from elsewhere hits them
    alike); the median round's value and baseline (`support.median_round`)."""
    pairs = []
    for round_ in range(rounds):
        if round_ % 2 == 0:
            base, base_fill = baseline(), LAST_BATCH_FILL[0]
            value, fill = measured(), LAST_BATCH_FILL[0]
        else:
            value, fill = measured(), LAST_BATCH_FILL[0]
            base, base_fill = baseline(), LAST_BATCH_FILL[0]
        pairs.append((value, base))
        print(
            f"    {label} round {round_ + 1}: {value:.1f}/s vs no-op {base:.1f}/s ({value / base:.3f});"
            f" events a batch {fill:.1f} vs {base_fill:.1f}",
            flush=True,
        )
    value, base = support.median_round(pairs)
    return value, base, pairs


def delete_queues() -> None:
    from django.conf import settings
    from kombu import Connection

    from core.events.consumer import dead_letter_queue, event_queues, retry_queue

    prefix = settings.EVENTS_QUEUE_PREFIX
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        channel = conn.default_channel
        for queue in [*event_queues(prefix), retry_queue(prefix), dead_letter_queue(prefix)]:
            try:
                queue(channel).delete()
            except Exception:
                channel = conn.channel()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
