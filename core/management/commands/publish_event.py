import json
import sys

from django.core.management.base import BaseCommand, CommandError

from core.events.publish import publish_event


class Command(BaseCommand):
    help = "Publish one event to an exchange, as another team would (body: JSON argument or '-' for stdin)."

    def add_arguments(self, parser):
        parser.add_argument("exchange", help="user_center or payment")
        parser.add_argument("routing_key", help="e.g. app.activated")
        parser.add_argument("body", help="the JSON body, or - to read it from stdin")

    def handle(self, *args, exchange, routing_key, body, **options):
        raw = sys.stdin.read() if body == "-" else body
        try:
            json.loads(raw)
        except ValueError as exc:
            raise CommandError(f"body is not JSON: {exc}") from None
        publish_event(exchange, routing_key, raw.encode("utf-8"))
        self.stdout.write(f"published to {exchange} with routing key {routing_key}")
