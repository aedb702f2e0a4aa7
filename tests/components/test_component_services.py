import pytest

from activities import services
from activities.models import AuditEntry
from components.models import Component
from core.errors import DomainError
from tests.factories import ActivityFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return StaffUserFactory(username="op-components")


def test_create_validates_fills_defaults_and_appends(operator):
    activity = ActivityFactory()
    first = services.component_create(activity=activity, actor=operator, type="countdown")
    second = services.component_create(
        activity=activity, actor=operator, type="banner", config={"image": "https://img.example.com/a.png"}
    )
    assert first.config == {"label": "距活动结束还有", "ended_text": "活动已结束"}
    assert second.position == first.position + 1
    entry = AuditEntry.objects.get(object_type="component", object_id=second.pk)
    assert entry.action == "create" and entry.actor == operator and entry.changes["type"] == [None, "banner"]


def test_invalid_config_is_refused_and_nothing_is_written(operator):
    activity = ActivityFactory()
    with pytest.raises(DomainError) as exc:
        services.component_create(activity=activity, actor=operator, type="banner", config={"image": 1, "x": 2})
    assert exc.value.code == "config_invalid" and set(exc.value.details) == {"image", "x"}
    with pytest.raises(DomainError) as exc:
        services.component_create(activity=activity, actor=operator, type="carousel", config={})
    assert exc.value.code == "unknown_component_type"
    assert not Component.objects.exists() and not AuditEntry.objects.exists()


def test_update_records_a_diff_and_refuses_bad_config(operator):
    activity = ActivityFactory()
    component = services.component_create(activity=activity, actor=operator, type="rich_text", config={"html": "a"})
    services.component_update(component=component, actor=operator, config={"html": "b"}, title="Rules")
    entry = AuditEntry.objects.filter(action="update").get()
    assert entry.changes == {"title": ["", "Rules"], "config": [{"html": "a"}, {"html": "b"}]}
    with pytest.raises(DomainError):
        services.component_update(component=component, actor=operator, config={"html": 5})
    component.refresh_from_db()
    assert component.config == {"html": "b"}


def test_reorder_sets_positions_and_refuses_a_partial_list(operator):
    activity = ActivityFactory()
    a, b, c = (services.component_create(activity=activity, actor=operator, type="countdown") for _ in range(3))
    services.components_reorder(activity=activity, actor=operator, component_ids=[c.pk, a.pk, b.pk])
    assert list(activity.components.order_by("position").values_list("pk", flat=True)) == [c.pk, a.pk, b.pk]
    assert AuditEntry.objects.get(action="reorder").changes["order"] == [[a.pk, b.pk, c.pk], [c.pk, a.pk, b.pk]]
    other = services.component_create(activity=ActivityFactory(), actor=operator, type="countdown")
    for ids in ([c.pk, a.pk], [c.pk, a.pk, b.pk, b.pk], [c.pk, a.pk, other.pk]):
        with pytest.raises(DomainError) as exc:
            services.components_reorder(activity=activity, actor=operator, component_ids=ids)
        assert exc.value.code == "reorder_mismatch"
    assert list(activity.components.order_by("position").values_list("pk", flat=True)) == [c.pk, a.pk, b.pk]


def test_delete_is_audited(operator):
    activity = ActivityFactory()
    component = services.component_create(activity=activity, actor=operator, type="countdown")
    services.component_delete(component=component, actor=operator)
    assert not Component.objects.exists()
    assert AuditEntry.objects.get(action="delete").changes["type"] == ["countdown", None]
