from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.utils import timezone

from analytics.reports import daily_report_send
from core.errors import DomainError


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--date {text!r} is not YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Build and send the daily marketing report of one local day (default: yesterday in "
        "TIME_ZONE) to --to or the report subscriptions (REPORT_RECIPIENTS when none). A day "
        "already sent is refused unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="YYYY-MM-DD, the report's local day (default yesterday)")
        parser.add_argument("--to", nargs="+", default=None, metavar="ADDR", help="recipients instead of the list")
        parser.add_argument("--force", action="store_true", help="send again a day already sent")

    def handle(self, *args, date=None, to=None, force=False, **options):
        day = _day(date) if date else timezone.localdate() - timedelta(days=1)
        for address in to or []:
            try:
                validate_email(address)
            except ValidationError:
                raise CommandError(f"--to {address!r} is not an e-mail address") from None
        try:
            archive = daily_report_send(day=day, recipients=to, force=force)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(f"sending failed (recorded on the archive): {type(exc).__name__}: {exc}") from exc
        self.stdout.write(f"sent {archive.subject} to {', '.join(archive.recipients)} (attempt {archive.attempts})")
