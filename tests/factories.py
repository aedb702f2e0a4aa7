"""Factories shared across apps. App-specific ones live in tests/<app>/factories.py."""

import factory
from django.contrib.auth import get_user_model

from activities.models import Activity
from components.models import Component


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-2026")


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    name = factory.Sequence(lambda n: f"Activity {n}")
    slug = factory.Sequence(lambda n: f"activity-{n}")


class ComponentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Component

    activity = factory.SubFactory(ActivityFactory)
    type = "banner"
    position = factory.Sequence(lambda n: n)
    config = factory.LazyFunction(dict)
