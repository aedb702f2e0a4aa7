"""Factories shared across apps. App-specific ones live in tests/<app>/factories.py."""

import factory
from django.contrib.auth import get_user_model

from activities.models import Activity
from components.models import Component


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True

    @factory.post_generation
    def password(user, create, extracted, **kwargs):  # noqa: N805 (factory_boy passes the instance)
        user.set_password(extracted or "pw-for-tests-2026")
        if create:
            user.save(update_fields=["password"])


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
