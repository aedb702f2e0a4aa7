"""Component types used only by the tests: one with live state, one whose component
data lives in a real table of its own (auth Group stands in for an app's table)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from rest_framework import serializers

from components import registry
from components.registry import ComponentType


def _stateful_live_state(*, component, user) -> dict:
    if component.config.get("explode"):
        raise RuntimeError("live state backend down")
    return {"user": user.id if user else None, "activity": component.activity.slug}


class _DataSerializer(serializers.Serializer):
    def to_representation(self, instance) -> dict:
        group = Group.objects.get(pk=instance.config["group_id"])
        return {"group_name": group.name}


def _data_clone(*, source, target) -> None:
    group = Group.objects.get(pk=source.config["group_id"])
    if group.name == "fail-clone":
        raise RuntimeError("clone failed")
    copy = Group.objects.create(name=f"{group.name}/copy-{target.pk}")
    target.config = {**target.config, "group_id": copy.pk}
    target.save(update_fields=["config"])


def ensure_registered() -> None:
    if "test_stateful" not in {t.key for t in registry.all_types()}:
        registry.register(
            ComponentType(
                key="test_stateful",
                label="Test stateful",
                schema={
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"explode": {"type": "boolean", "default": False}},
                },
                template="components/rich_text.html",
                live_state=_stateful_live_state,
            )
        )
        registry.register(
            ComponentType(
                key="test_data",
                label="Test with data",
                schema={
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["group_id"],
                    "properties": {"group_id": {"type": "integer"}},
                },
                template="components/rich_text.html",
                serializer=_DataSerializer,
                clone=_data_clone,
            )
        )


ensure_registered()
