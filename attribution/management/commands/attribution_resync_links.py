from django.core.management.base import BaseCommand

from attribution.services import tracking_links_resync


class Command(BaseCommand):
    help = "Replicate every tracking link's settings into Redis (the click endpoint reads only Redis)."

    def handle(self, *args, **options):
        result = tracking_links_resync()
        self.stdout.write(f"synced {result['synced']} tracking link(s), removed {result['removed']} stale replica(s)")
