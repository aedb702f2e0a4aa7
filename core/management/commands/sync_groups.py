from django.core.management.base import BaseCommand

from core.services import groups_sync


class Command(BaseCommand):
    help = "Create or refresh the operator and analyst groups and their permissions."

    def handle(self, *args, **options):
        for group, count in groups_sync().items():
            self.stdout.write(f"{group}: {count} permissions")
