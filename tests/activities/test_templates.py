import pytest
from django.contrib.auth.models import Group

from activities import services
from activities.models import Activity, AuditEntry
from components.models import Component
from core.errors import DomainError
from tests.activities import testing_types  # noqa: F401  (registers the test types)

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(make_activity, publish, operator):
    data = Group.objects.create(name="listing-data")
    activity = make_activity(
        components=[
            ("banner", {"image": "https://img.example.com/1.png", "alt": "a"}),
            ("test_data", {"group_id": data.pk}),
            ("rich_text", {"html": "<p>x</p>"}),
        ],
        theme_background_color="#123456",
        theme_share_title="share",
    )
    services.component_update(component=activity.components.get(type="rich_text"), actor=operator, enabled=False)
    publish(activity)
    return activity


def _shape(activity):
    return [(c.type, c.position, c.enabled, c.title) for c in activity.components.order_by("position")]


def test_save_as_template_deep_copies_components_and_their_data(source, operator):
    template = services.activity_save_as_template(activity=source, actor=operator)
    assert template.is_template and template.status == "draft" and template.slug != source.slug
    assert template.theme_background_color == "#123456" and template.theme_share_title == "share"
    assert _shape(template) == _shape(source)
    source_ids = set(source.components.values_list("pk", flat=True))
    assert source_ids.isdisjoint(template.components.values_list("pk", flat=True))
    # component data went through the type's clone hook: a new row, not a shared one
    src_data = source.components.get(type="test_data").config["group_id"]
    copy_data = template.components.get(type="test_data").config["group_id"]
    assert copy_data != src_data
    assert Group.objects.get(pk=copy_data).name.startswith("listing-data/copy-")
    assert AuditEntry.objects.filter(action="clone", object_id=template.pk, actor=operator).exists()


def test_create_from_template_starts_a_draft_sharing_no_rows(source, operator):
    template = services.activity_save_as_template(activity=source, actor=operator)
    activity = services.activity_create_from_template(
        template=template, actor=operator, name="Double 12", slug="double-12"
    )
    assert (activity.name, activity.slug, activity.status, activity.is_template) == (
        "Double 12",
        "double-12",
        "draft",
        False,
    )
    assert activity.published_revision is None and activity.starts_at is None and activity.ends_at is None
    assert _shape(activity) == _shape(source)
    groups = {c.activity_id: c.config["group_id"] for c in Component.objects.filter(type="test_data")}
    assert len(set(groups.values())) == 3  # source, template and activity each own their data row
    # editing the copy's config never touches the template's
    banner = activity.components.get(type="banner")
    services.component_update(component=banner, actor=operator, config={"image": "https://img.example.com/2.png"})
    assert template.components.get(type="banner").config["image"] == "https://img.example.com/1.png"


def test_creating_from_a_non_template_is_refused(source, operator):
    with pytest.raises(DomainError) as exc:
        services.activity_create_from_template(template=source, actor=operator)
    assert exc.value.code == "not_a_template"


def test_a_failing_clone_hook_leaves_nothing_behind(make_activity, operator):
    data = Group.objects.create(name="fail-clone")
    activity = make_activity(
        components=[("banner", {"image": "https://img.example.com/1.png"}), ("test_data", {"group_id": data.pk})]
    )
    activities, components, groups = Activity.objects.count(), Component.objects.count(), Group.objects.count()
    with pytest.raises(RuntimeError):
        services.activity_save_as_template(activity=activity, actor=operator)
    assert (Activity.objects.count(), Component.objects.count(), Group.objects.count()) == (
        activities,
        components,
        groups,
    )


def test_a_template_cannot_be_published_or_put_online(source, operator):
    template = services.activity_save_as_template(activity=source, actor=operator)
    with pytest.raises(DomainError) as exc:
        services.activity_publish(activity=template, actor=operator)
    assert exc.value.code == "is_template"
    with pytest.raises(DomainError):
        services.activity_transition(activity=template, to="scheduled", actor=operator)
