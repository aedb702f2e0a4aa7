"""`make bench ONLY=activities`: requests per second of the public page and the
activity API with the cache warm, each against a Django view that returns a
constant, measured in the same process through the same middleware stack."""

from __future__ import annotations

import secrets
import time

from django.http import HttpResponse

from bench.support import bench_database, figure

ROUNDS = 3
SECONDS_PER_MEASURE = 2.0


def constant(request):
    return HttpResponse("ok", content_type="text/plain")


# The bench's URLconf (filled in once Django is set up): the project's URLs plus
# the baseline view.
urlpatterns: list = []


def _rps(client, url: str, expect: int = 200) -> float:
    # warm-up (and a sanity check that the URL answers what we think)
    response = client.get(url)
    assert response.status_code == expect, (url, response.status_code)
    count, started = 0, time.perf_counter()
    deadline = started + SECONDS_PER_MEASURE
    while True:
        for _ in range(20):
            client.get(url)
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def _activity(slug: str):
    from activities import services

    activity = services.activity_create(actor=None, name="Bench sale", slug=slug, theme_share_title="bench")
    for i in range(2):
        services.component_create(
            activity=activity,
            actor=None,
            type="banner",
            config={"image": f"https://img.example.com/{i}.png", "link": "https://example.com/"},
        )
        services.component_create(
            activity=activity, actor=None, type="rich_text", config={"html": "<p>rules <b>bold</b></p>" * 20}
        )
    services.component_create(activity=activity, actor=None, type="countdown", config={})
    services.activity_publish(activity=activity, actor=None)
    return activity


def run() -> dict[str, dict]:
    with bench_database():
        from django.urls import include, path

        urlpatterns[:] = [path("bench/constant/", constant), path("", include("config.urls"))]
        from django.conf import settings
        from django.test import Client
        from django.test.utils import override_settings

        from activities.cache import public_cache_invalidate

        slug = f"bench-{secrets.token_hex(4)}"
        _activity(slug)
        public_cache_invalidate(slug)  # start from a fresh generation
        client = Client()
        best = {"baseline": 0.0, "page": 0.0, "api": 0.0}
        with override_settings(ROOT_URLCONF=__name__, DEBUG=False, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS]):
            for _ in range(ROUNDS):  # interleaved, best of each, to even out noise
                best["baseline"] = max(best["baseline"], _rps(client, "/bench/constant/"))
                best["page"] = max(best["page"], _rps(client, f"/a/{slug}/"))
                best["api"] = max(best["api"], _rps(client, f"/api/v1/activities/{slug}"))
        return {
            "activities.page_rps": figure(best["page"], "req/s", best["baseline"], components=7, cache="warm"),
            "activities.api_rps": figure(best["api"], "req/s", best["baseline"], components=7, cache="warm"),
        }
