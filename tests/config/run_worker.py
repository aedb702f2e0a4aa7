"""Starts a real Celery worker (with the event consumer bootstep) that also has
the test-only echo handler registered. Used by test_worker.py as a subprocess."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import django

django.setup()

from tests.config.handlers import register_echo  # noqa: E402

register_echo(batch=os.environ.get("ECHO_BATCH") == "1")

from config.celery import app  # noqa: E402

app.worker_main(["worker", "--pool", "solo", "--loglevel", "INFO", "--without-mingle", "--without-gossip"])
