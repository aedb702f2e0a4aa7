from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from alerts.simulate import traffic_simulate
from attribution.models import TrackingLink


class Command(BaseCommand):
    help = (
        "Generate clicks (through the click door) and activations (through the events broker, or --direct) "
        "on tracking links, optionally with an OS activation drop, click injection or a click flood."
    )

    def add_arguments(self, parser):
        parser.add_argument("--link", type=int, action="append", help="tracking link id (default: every active link)")
        parser.add_argument("--clicks", type=int, default=20, help="clicks per link")
        parser.add_argument("--install-rate", type=float, default=0.3)
        parser.add_argument("--drop-os", choices=["ios", "android"], default="", help="no activations from this OS")
        parser.add_argument("--drop-os-version", default="", help="only this major version (e.g. 13)")
        parser.add_argument("--injection", type=int, default=0, help="installs 2 s after their click, per link")
        parser.add_argument("--flood", type=int, default=0, help="one device clicking this many times per link")
        parser.add_argument("--direct", action="store_true", help="activations through the matching service now")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, **o):
        links = TrackingLink.objects.filter(enabled=True)
        if o["link"]:
            links = links.filter(pk__in=o["link"])
        links = list(links)
        if not links:
            raise CommandError("no active tracking link")
        done = traffic_simulate(
            links=links,
            clicks_per_link=o["clicks"],
            install_rate=o["install_rate"],
            drop_os=o["drop_os"],
            drop_os_version=o["drop_os_version"],
            injection=o["injection"],
            flood_clicks=o["flood"],
            direct=o["direct"],
            seed=o["seed"],
        )
        self.stdout.write(
            f"{done.clicks} clicks, {done.activations} activations, {done.dropped} dropped on {len(links)} links"
        )
