"""The one harness for truly concurrent clients, shared by the tests and bench/.

    run = clients_run(jobs, work, clients=200)
    run.results   # work(job) for every job, in the order of `jobs`
    run.elapsed   # seconds from the release of all clients to the last result
    run.peak      # most jobs in flight at once (proof that they overlapped)

Each client is a thread with its own database connection, opened *before* the
start, so connecting is never part of what is measured or raced. All clients wait
at one barrier and are released together. A client that cannot connect (e.g. too
many connections) aborts the barrier, so nobody waits for a client that cannot
come, and its own error is raised. Every client closes its connection at the end.

On MySQL/MariaDB, `mysql_connections_ensure(connection, clients)` makes room for
that many more connections (raising `max_connections` for the server's lifetime
when it is below what is needed; the default, 151, is shared with everything else).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

BARRIER_TIMEOUT = 120.0
# Clients connect at most this many at once (all still before the barrier). A
# thousand connects at once overflow the server's listen queue (MariaDB's
# `back_log`, 80 here): the kernel drops the handshake's last ACK, the client
# believes it is connected and waits for the server's greeting forever (seen: 19
# clients of the 1,000-client race stuck in MySQLdb's connect, the run hung).
CONNECTING_AT_ONCE = 32


@dataclass
class Run(Generic[Result]):
    results: list[Result]
    elapsed: float
    peak: int


def clients_run(
    jobs: Sequence[Job],
    work: Callable[[Job], Result],
    *,
    clients: int,
    timeout: float = BARRIER_TIMEOUT,
) -> Run[Result]:
    """Run `work(job)` for every job on `clients` threads (fewer when there are
    fewer jobs), each with its own database connection, released together."""
    from django.db import connection

    clients = max(1, min(clients, len(jobs)))
    barrier = threading.Barrier(clients + 1)  # + the caller, who starts the clock
    chunks = [list(range(i, len(jobs), clients)) for i in range(clients)]
    results: list = [None] * len(jobs)
    lock = threading.Lock()
    connecting = threading.Semaphore(CONNECTING_AT_ONCE)
    flight = {"now": 0, "peak": 0}

    def client(indexes: list[int]) -> None:
        try:
            try:
                with connecting:
                    connection.ensure_connection()
            except Exception:
                barrier.abort()  # never leave the others waiting for a client that cannot come
                raise
            barrier.wait(timeout=timeout)
            for index in indexes:
                with lock:
                    flight["now"] += 1
                    flight["peak"] = max(flight["peak"], flight["now"])
                try:
                    results[index] = work(jobs[index])
                finally:
                    with lock:
                        flight["now"] -= 1
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(client, chunk) for chunk in chunks]
        try:
            barrier.wait(timeout=timeout)
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # raises a client's own error (e.g. too many connections)
            raise
        started = time.perf_counter()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
    return Run(results=results, elapsed=elapsed, peak=flight["peak"])


def mysql_connections_ensure(connection, clients: int) -> None:
    """Room for `clients` more connections on MySQL/MariaDB (nothing elsewhere)."""
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_connections")
        (current,) = cursor.fetchone()
        cursor.execute("SHOW STATUS LIKE 'Threads_connected'")
        connected = int(cursor.fetchone()[1])
        needed = connected + clients + 100  # others connect meanwhile (a shared server)
        if current < needed:
            cursor.execute(f"SET GLOBAL max_connections = {needed + 100}")
