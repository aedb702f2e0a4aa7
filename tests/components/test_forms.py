"""The admin settings form generated from a type's schema."""

from django import forms

from components import registry
from components.forms import config_fields, config_from_cleaned, config_initial
from components.registry import ComponentType

KEY = "test_form_kinds"
if KEY not in {t.key for t in registry.all_types()}:
    registry.register(
        ComponentType(
            key=KEY,
            label="Form kinds",
            template="components/rich_text.html",
            schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["group_id"],
                "properties": {
                    "group_id": {"type": "integer", "minimum": 1, "title": "Group"},
                    "per_page": {"type": "integer", "default": 10, "minimum": 1, "maximum": 50},
                    "ratio": {"type": "number", "default": 0.5},
                    "layout": {"type": "string", "enum": ["grid", "list"], "default": "list"},
                    "show": {"type": "boolean", "default": True},
                    "cities": {"type": "array", "items": {"type": "string"}, "default": []},
                    "ids": {"type": "array", "items": {"type": "integer"}, "default": []},
                    "note": {"type": ["string", "null"], "default": None},
                    "opens_at": {"type": "string", "format": "date-time", "default": ""},
                    "extra": {"type": "object", "default": {}},
                },
            },
        )
    )


def _form(data=None):
    form_class = type("F", (forms.Form,), dict(config_fields(KEY)))
    return form_class(data=data, initial=config_initial(KEY, {"group_id": 3}))


def test_each_schema_kind_gets_a_real_field():
    fields = _form().fields
    assert isinstance(fields["cfg_group_id"], forms.IntegerField) and fields["cfg_group_id"].required
    assert fields["cfg_per_page"].max_value == 50 and not fields["cfg_per_page"].required
    assert isinstance(fields["cfg_ratio"], forms.FloatField)
    assert [c[0] for c in fields["cfg_layout"].choices] == ["", "grid", "list"]
    assert isinstance(fields["cfg_show"], forms.BooleanField)
    assert isinstance(fields["cfg_cities"].widget, forms.Textarea)
    assert isinstance(fields["cfg_opens_at"], forms.DateTimeField)
    assert isinstance(fields["cfg_extra"], forms.JSONField)
    assert _form().initial["cfg_per_page"] == 10 and _form().initial["cfg_group_id"] == 3


def test_posted_values_become_a_valid_config():
    form = _form(
        {
            "cfg_group_id": "7",
            "cfg_per_page": "",
            "cfg_ratio": "0.25",
            "cfg_layout": "grid",
            "cfg_cities": "北京\n 上海 \n\n",
            "cfg_ids": "1\n2",
            "cfg_note": "",
            "cfg_opens_at": "2026-12-12 10:00:00",
            "cfg_extra": '{"a": 1}',
        }
    )
    assert form.is_valid(), form.errors
    config = registry.config_validate(KEY, config_from_cleaned(KEY, form.cleaned_data))
    assert config["group_id"] == 7 and config["per_page"] == 10 and config["ratio"] == 0.25
    assert config["layout"] == "grid" and config["show"] is False
    assert config["cities"] == ["北京", "上海"] and config["ids"] == [1, 2]
    assert config["note"] is None and config["extra"] == {"a": 1}
    assert config["opens_at"].startswith("2026-12-12T10:00:00")


def test_bad_values_are_field_errors():
    form = _form({"cfg_group_id": "0", "cfg_ids": "1\nx", "cfg_per_page": "99"})
    assert not form.is_valid()
    assert {"cfg_group_id", "cfg_ids", "cfg_per_page"} <= set(form.errors)
