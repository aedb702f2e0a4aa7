"""`manage.py ad_reports_pull [--account ID] [--from DATE] [--to DATE]`: pull by hand."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from adreports import services
from core.errors import DomainError
from core.money import yuan_text


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Pull the ad platforms' daily reports (default: every active account, the last 7 days) and print what changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", type=int, action="append", help="AdAccount id (repeatable)")
        parser.add_argument("--from", dest="start", type=_date, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", type=_date, help="last day, YYYY-MM-DD (default today)")

    def handle(self, *args, account=None, start=None, end=None, **options):
        try:
            pulls = services.ad_reports_pull(account_ids=account, start=start, end=end)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        failed = 0
        for pull in pulls:
            if pull.status != "succeeded":
                failed += 1
                self.stdout.write(
                    self.style.ERROR(f"{pull.account} {pull.day}: FAILED ({pull.error_kind}) {pull.error}")
                )
                continue
            if pull.changed:
                change = (
                    f"+{pull.created} new, {pull.updated} changed, -{pull.deleted} gone; "
                    f"cost {yuan_text(pull.cost_fen_before, symbol='¥')} -> "
                    f"{yuan_text(pull.cost_fen_after, symbol='¥')}"
                )
            else:
                change = "unchanged"
            self.stdout.write(f"{pull.account} {pull.day}: {pull.rows} rows in {pull.pages} pages, {change}")
        changed = sum(1 for p in pulls if p.changed)
        self.stdout.write(f"{len(pulls)} account-days pulled: {changed} changed, {failed} failed")
        if failed:
            raise CommandError(f"{failed} account-days failed (recorded; see Ad pulls in the admin)")
