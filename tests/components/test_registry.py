import pytest

from components import registry
from components.registry import ComponentType, ConfigInvalid


def test_defaults_are_filled_in():
    assert registry.config_validate("banner", {"image": "https://img.example.com/a.png"}) == {
        "image": "https://img.example.com/a.png",
        "link": "",
        "alt": "",
    }
    assert registry.config_validate("countdown", {}) == {"label": "距活动结束还有", "ended_text": "活动已结束"}


def test_given_values_win_over_defaults_and_defaults_are_not_shared():
    first = registry.config_validate("countdown", {"label": "还剩"})
    assert first["label"] == "还剩"
    first["ended_text"] = "mutated"
    assert registry.config_validate("countdown", {})["ended_text"] == "活动已结束"


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"image": 42}, "image", "Enter text"),
        ({"image": "https://img.example.com/a.png", "alt": ["x"]}, "alt", "Enter text"),
        ({"image": "javascript:alert(1)"}, "image", "Enter a web address starting with http:// or https://"),
        ({"image": "https://img.example.com/a.png", "link": "javascript:alert(1)"}, "link", "Enter a web address"),
        ({}, "image", "This field is required."),
        ({"image": "https://img.example.com/a.png", "colour": "red"}, "colour", "is not a setting"),
    ],
)
def test_wrong_types_missing_and_unknown_keys_are_refused(config, field, fragment):
    with pytest.raises(ConfigInvalid) as exc:
        registry.config_validate("banner", config)
    assert field in exc.value.errors
    assert any(fragment in message for message in exc.value.errors[field])
    # words, never the schema's regular expression or a validator's internals
    assert not any("^" in message or "does not match" in message for message in exc.value.errors[field])


def test_a_config_must_be_an_object():
    with pytest.raises(ConfigInvalid) as exc:
        registry.config_validate("rich_text", ["<p>x</p>"])
    assert exc.value.errors == {"config": ["must be a JSON object"]}


def test_unknown_type_is_refused():
    with pytest.raises(registry.UnknownComponentType):
        registry.config_validate("no_such_type", {})


def test_the_simple_types_are_registered_with_templates():
    keys = {t.key: t for t in registry.all_types()}
    assert {"banner", "rich_text", "countdown"} <= set(keys)
    assert keys["banner"].template == "components/banner.html"


def test_registering_a_key_twice_or_an_open_schema_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ComponentType(key="banner", label="x", schema=registry.get("banner").schema, template="x"))
    with pytest.raises(ValueError, match="additionalProperties"):
        registry.register(ComponentType(key="open_type", label="x", schema={"type": "object"}, template="x"))
    assert "open_type" not in {t.key for t in registry.all_types()}
