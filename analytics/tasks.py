"""Celery doors of analytics."""

from __future__ import annotations

from celery import shared_task

from analytics import services


@shared_task(ignore_result=True)
def rollup_tick_task() -> dict:
    return services.rollup_tick()
