from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from alerts import detectors
from alerts.checks import traffic_check


class Command(BaseCommand):
    help = "Run every traffic detector and fraud watch once (now or --at) and print each finding on its own line."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO 8601 time with an offset (default: now)")
        parser.add_argument("--rule", action="append", choices=sorted(detectors.DETECTORS), help="only these rules")
        parser.add_argument("--dry-run", action="store_true", help="print findings, fire and resolve nothing")

    def handle(self, *args, at=None, rule=None, dry_run=False, **options):
        moment = None
        if at:
            try:
                moment = datetime.fromisoformat(at)
            except ValueError as exc:
                raise CommandError(f"--at: not an ISO 8601 time: {at!r}") from exc
            if moment.tzinfo is None:
                raise CommandError("--at needs an offset, e.g. 2026-12-01T10:15:00+08:00")
        findings = traffic_check(at=moment, only=rule, fire=not dry_run)
        for finding in findings:
            self.stdout.write(finding.line())
        if not findings:
            self.stdout.write("no findings")
