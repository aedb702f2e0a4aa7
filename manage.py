#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from core.boot import process_prepare

    process_prepare()  # folders under var/, the embedded Redis when REDIS_URL is unset

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
