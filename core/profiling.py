"""Profiles on demand (pyinstrument), read in the admin (core.models.Profile).

- One request: a staff user allowed to add profiles mints a signed token in the
  admin (Profiles -> "Profile a request"), valid PROFILE_TOKEN_TTL_SECONDS, and sends
  it as the query parameter `_profile=<token>` or the header `X-Profile-Token`. The
  request runs under the profiler and its report is stored. A token that does not
  verify (forged, expired, its user no longer allowed) is ignored: the request runs
  as usual.
- Slow requests: PROFILE_SLOW_SAMPLE_RATIO of requests run under the profiler and
  those slower than PROFILE_SLOW_REQUEST_MS are stored (0 = off, the default: the
  profiler costs real time).
- Celery tasks named in PROFILE_CELERY_TASKS (or `*`) are profiled on every run.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing

from core import telemetry
from core.models import ProfileKind, ProfileTrigger

if TYPE_CHECKING:
    from pyinstrument import Profiler

logger = logging.getLogger("huodong.profiling")

_SALT = "huodong.profiling"
PARAM = "_profile"
HEADER = "X-Profile-Token"
PERMISSION = "config.add_profile"


def profile_token_mint(*, user) -> str:
    """A signed token naming the user; verified against the user at use."""
    return signing.TimestampSigner(salt=_SALT).sign(str(user.pk))


def profile_token_user(token: str):
    """The staff user a valid, unexpired token names who may still profile, or None."""
    from django.contrib.auth import get_user_model

    try:
        user_pk = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=settings.PROFILE_TOKEN_TTL_SECONDS)
    except signing.BadSignature:
        return None
    user = get_user_model().objects.filter(pk=user_pk, is_active=True, is_staff=True).first()
    return user if user is not None and user.has_perm(PERMISSION) else None


def _start():
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    try:
        profiler.start()
    except RuntimeError:  # another profiler already runs on this thread (an eager task inside a request)
        return None
    return profiler


def _store(profiler, *, kind: str, trigger: str, name: str, seconds: float, requested_by: str = "") -> None:
    from core.services import profile_create

    ids = telemetry.current_ids()
    try:
        profile_create(
            kind=kind,
            trigger=trigger,
            name=name,
            duration_ms=seconds * 1000,
            requested_by=requested_by,
            trace_id=ids[0] if ids else "",
            text=profiler.output_text(unicode=True, color=False),
            html=profiler.output_html(),
        )
    except Exception:  # a profile is never worth failing the request or the task
        logger.exception("profile not stored", extra={"name": name})


class ProfilingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = request.GET.get(PARAM) or request.headers.get(HEADER)
        user = profile_token_user(token) if token else None
        if user is None and not (
            settings.PROFILE_SLOW_SAMPLE_RATIO > 0 and random.random() < settings.PROFILE_SLOW_SAMPLE_RATIO
        ):
            return self.get_response(request)
        profiler = _start()
        if profiler is None:
            return self.get_response(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            profiler.stop()
        seconds = time.perf_counter() - started
        if user is not None:
            trigger = ProfileTrigger.ON_DEMAND
        elif seconds * 1000 >= settings.PROFILE_SLOW_REQUEST_MS:
            trigger = ProfileTrigger.SLOW
        else:
            return response
        name = f"{request.method} {request.path}"[:255]
        _store(
            profiler,
            kind=ProfileKind.REQUEST,
            trigger=trigger,
            name=name,
            seconds=seconds,
            requested_by=user.get_username() if user is not None else "",
        )
        return response


# --- Celery (task_prerun / task_postrun receivers, connected in core.apps) -------
_task_profilers: dict[str, tuple[Profiler, float]] = {}


def _task_wanted(name: str) -> bool:
    wanted = settings.PROFILE_CELERY_TASKS
    return bool(wanted) and ("*" in wanted or name in wanted)


def task_profile_start(task_id=None, task=None, **kwargs) -> None:
    if task is None or not _task_wanted(task.name):
        return
    profiler = _start()
    if profiler is not None:
        _task_profilers[task_id] = (profiler, time.perf_counter())


def task_profile_stop(task_id=None, task=None, **kwargs) -> None:
    entry = _task_profilers.pop(task_id, None)
    if entry is None:
        return
    profiler, started = entry
    profiler.stop()
    _store(
        profiler,
        kind=ProfileKind.TASK,
        trigger=ProfileTrigger.SETTING,
        name=task.name[:255],
        seconds=time.perf_counter() - started,
    )
