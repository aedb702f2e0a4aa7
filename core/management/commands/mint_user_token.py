from django.core.management.base import BaseCommand

from core.auth import user_token_mint


class Command(BaseCommand):
    help = "Print an end-user token (contracts §5) for local use: Authorization: Bearer <token>."

    def add_arguments(self, parser):
        parser.add_argument("user_id")
        parser.add_argument("--ttl", type=int, default=7 * 24 * 3600, help="seconds until it expires")

    def handle(self, *args, user_id: str, ttl: int, **options):
        self.stdout.write(user_token_mint(user_id=user_id, ttl_seconds=ttl))
