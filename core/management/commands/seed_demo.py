"""Idempotent demo data. Each app adds its part in `<app>/demo.py`: a function
`seed(stdout) -> None`, called in INSTALLED_APPS order after the logins exist, and
optionally `finalize(stdout) -> None`, called after every app has seeded (the
activities app publishes the demo activity there, once every app has added its
component to it)."""

import importlib

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from core.services import ANALYST_GROUP, OPERATOR_GROUP, TECHNICAL_GROUP, groups_sync, staff_user_ensure

DEMO_LOGINS = (
    ("operator", "operator-demo-2026", OPERATOR_GROUP),
    ("analyst", "analyst-demo-2026", ANALYST_GROUP),
    ("technical", "technical-demo-2026", TECHNICAL_GROUP),
)


class Command(BaseCommand):
    help = "Create (or refresh) the demo logins and one of everything the platform can show."

    def handle(self, *args, **options):
        groups_sync()
        for username, password, group in DEMO_LOGINS:
            staff_user_ensure(username=username, password=password, group=group)
        modules = []
        for config in apps.get_app_configs():
            try:
                modules.append(importlib.import_module(f"{config.name}.demo"))
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
        for module in modules:
            with transaction.atomic():
                module.seed(self.stdout)
        for module in modules:
            if hasattr(module, "finalize"):
                with transaction.atomic():
                    module.finalize(self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (admin at /admin/):"))
        for username, password, group in DEMO_LOGINS:
            self.stdout.write(f"  {group:9} {username} / {password}")
