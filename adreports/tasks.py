"""Celery doors of the ad-report jobs."""

from __future__ import annotations

from celery import shared_task

from adreports import services


@shared_task(name="adreports.ad_reports_pull", acks_late=True, soft_time_limit=3300, time_limit=3600)
def pull() -> dict:
    """Every active account, each of the last AD_REPORTS_DAYS days (figures settle late)."""
    pulls = services.ad_reports_pull()
    return {
        "pulled": len(pulls),
        "changed": sum(1 for p in pulls if p.changed),
        "failed": sum(1 for p in pulls if p.status != "succeeded"),
    }
