from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from analytics.campaigns import campaign_rollup_range
from analytics.services import rollup_range


def _moment(text: str) -> datetime:
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"{text!r} is neither a date (YYYY-MM-DD) nor a date-time (ISO 8601)")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)  # TIME_ZONE
    return moment


class Command(BaseCommand):
    help = (
        "Rebuild the rollups of every bucket starting in [--from, --to) from their sources "
        "(idempotent). Dates and naive times are in TIME_ZONE; --to defaults to --from + 1 hour."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD or ISO date-time")
        parser.add_argument("--to", dest="end", help="YYYY-MM-DD or ISO date-time (exclusive)")
        parser.add_argument("--minutes", type=int, choices=[60, 5], default=60, help="bucket size (default 60)")
        parser.add_argument(
            "--only", choices=["links", "campaigns"], help="one kind of rollup (default: both; campaigns are hourly)"
        )

    def handle(self, *args, start, end, minutes, only, **options):
        begin = _moment(start)
        finish = _moment(end) if end else begin + timedelta(hours=1)
        if finish <= begin:
            raise CommandError("--to must be after --from")
        if only != "campaigns":
            runs = rollup_range(start=begin, end=finish, minutes=minutes)
            rows = sum(run.rows for run in runs)
            self.stdout.write(f"links: rolled {len(runs)} bucket(s) of {minutes} min, {rows} row(s)")
        if only != "links" and minutes == 60:
            runs = campaign_rollup_range(start=begin, end=finish)
            rows = sum(run.rows for run in runs)
            self.stdout.write(f"campaigns: rolled {len(runs)} hour(s), {rows} row(s)")
