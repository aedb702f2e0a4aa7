from __future__ import annotations

from collections.abc import Callable

import pytest

from activities import services
from activities.models import Activity
from tests.factories import StaffUserFactory

BANNER = {"image": "https://img.example.com/b.png", "link": "https://example.com/go"}


@pytest.fixture
def operator():
    return StaffUserFactory(username="op-tests")


@pytest.fixture
def make_activity(operator) -> Callable[..., Activity]:
    """make_activity(slug, components=[(type, config), ...], **fields): a draft built
    through the services, as an operator would."""
    counter = iter(range(1, 10_000))

    def make(slug: str | None = None, components=(("banner", BANNER),), **fields) -> Activity:
        slug = slug or f"act-{next(counter)}"
        activity = services.activity_create(actor=operator, name=fields.pop("name", slug.title()), slug=slug, **fields)
        for type_key, config in components:
            services.component_create(activity=activity, actor=operator, type=type_key, config=config)
        return activity

    return make


@pytest.fixture
def publish(operator, django_capture_on_commit_callbacks):
    """Publish and run the after-commit cache invalidation, as in production."""

    def do(activity, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            revision = services.activity_publish(activity=activity, actor=kwargs.pop("actor", operator), **kwargs)
        activity.refresh_from_db()
        return revision

    return do


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` runs on_commit callbacks of writes inside it."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
