"""Writes of report subscriptions (the daily report's recipients)."""

from __future__ import annotations

from django.db import transaction

from analytics.models import ReportSubscription


@transaction.atomic
def report_subscription_save(
    *, subscription: ReportSubscription | None, email: str, name: str = "", active: bool = True
) -> ReportSubscription:
    subscription = subscription or ReportSubscription()
    subscription.email = email.strip().lower()
    subscription.name = name
    subscription.active = active
    subscription.full_clean()
    subscription.save()
    return subscription


@transaction.atomic
def report_subscription_delete(*, subscription: ReportSubscription) -> None:
    subscription.delete()
