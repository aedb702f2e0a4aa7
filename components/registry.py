"""The one component registry.

Each component type is declared once, by the app that owns it, in that app's
`component_types.py` (autodiscovered when Django starts):

    from components.registry import ComponentType, register

    register(ComponentType(
        key="banner",
        label="Banner",
        schema={...JSON schema of the config, with "default" on optional keys...},
        serializer=BannerPublicSerializer,   # Component -> public dict (frozen in snapshots)
        template="components/banner.html",   # how the H5 page renders it
        clone=clone_banner_data,              # copy component data to a new component
        live_state=coupon_pack_state,         # optional: per-request state (stock, user's state)
    ))

Nothing else in the code base switches on a component type.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext
from jsonschema import Draft202012Validator
from rest_framework import serializers

if TYPE_CHECKING:
    from components.models import Component


class ConfigSerializer(serializers.Serializer):
    """Default public serializer: the validated config as it is."""

    def to_representation(self, instance: Component) -> dict:
        return dict(instance.config)


def no_clone(*, source: Component, target: Component) -> None:
    """Clone hook of a type whose whole state is its config."""


@dataclass(frozen=True)
class ComponentType:
    key: str
    label: str
    schema: dict
    template: str
    serializer: type[serializers.BaseSerializer] = ConfigSerializer
    clone: Callable[..., None] = no_clone
    live_state: Callable[..., dict[str, Any]] | None = None

    def validator(self) -> Draft202012Validator:
        return _validator(self.key)


class UnknownComponentType(LookupError):
    pass


class ConfigInvalid(ValueError):
    """Raised with `errors`, a dict of config key (or "config") to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{key}: {', '.join(msgs)}" for key, msgs in errors.items()))
        self.errors = errors


_TYPES: dict[str, ComponentType] = {}
_VALIDATORS: dict[str, Draft202012Validator] = {}


def register(component_type: ComponentType) -> ComponentType:
    if component_type.key in _TYPES:
        raise ValueError(f"component type {component_type.key!r} is already registered")
    schema = component_type.schema
    if schema.get("type") != "object" or schema.get("additionalProperties", True) is not False:
        raise ValueError(f"{component_type.key}: a config schema is an object with additionalProperties false")
    Draft202012Validator.check_schema(schema)
    _TYPES[component_type.key] = component_type
    _VALIDATORS[component_type.key] = Draft202012Validator(schema)
    return component_type


def get(key: str) -> ComponentType:
    try:
        return _TYPES[key]
    except KeyError:
        raise UnknownComponentType(f"unknown component type {key!r}") from None


def all_types() -> list[ComponentType]:
    return list(_TYPES.values())


def choices() -> list[tuple[str, str]]:
    return [(t.key, t.label) for t in _TYPES.values()]


def _validator(key: str) -> Draft202012Validator:
    get(key)
    return _VALIDATORS[key]


def config_defaults(key: str) -> dict:
    props = get(key).schema.get("properties", {})
    return {name: copy.deepcopy(spec["default"]) for name, spec in props.items() if "default" in spec}


def _in_words(error) -> str:
    """A schema error as an operator reads it: never a regular expression or a
    validator's internals. A property may give its own sentence for a pattern
    mismatch in "x-error"."""
    spec = error.schema if isinstance(error.schema, dict) else {}
    value, kind = error.validator_value, error.validator
    if kind == "pattern" and spec.get("x-error"):
        return gettext(str(spec["x-error"]))
    if kind == "pattern":
        if "http" in str(value):
            return gettext("Enter a web address starting with http:// or https://.")
        return gettext("This value is not in the accepted format.")
    if kind == "maxLength":
        return gettext("At most %s characters.") % value
    if kind == "minLength":
        return gettext("This field is required.") if value == 1 else gettext("At least %s characters.") % value
    if kind in ("minimum", "exclusiveMinimum"):
        return gettext("Enter a number of at least %s.") % value
    if kind in ("maximum", "exclusiveMaximum"):
        return gettext("Enter a number of at most %s.") % value
    if kind == "enum":
        return gettext("Pick one of: %s.") % ", ".join(str(v) for v in value if v is not None)
    if kind == "type":
        names = {
            "integer": gettext("a whole number"),
            "number": gettext("a number"),
            "string": gettext("text"),
            "boolean": gettext("yes or no"),
            "array": gettext("a list"),
            "object": gettext("a group of settings"),
        }
        kinds = value if isinstance(value, list) else [value]
        return gettext("Enter %s.") % " / ".join(str(names.get(k, k)) for k in kinds if k != "null")
    if kind == "uniqueItems":
        return gettext("Each item may appear only once.")
    if kind == "maxItems":
        return gettext("At most %s items.") % value
    if kind == "minItems":
        return gettext("At least %s items.") % value
    return gettext("This value is not accepted.")


def config_validate(key: str, config: Any) -> dict:
    """Return the config with defaults filled in, or raise ConfigInvalid.
    Unknown keys and wrong types are refused."""
    if not isinstance(config, dict):
        raise ConfigInvalid({"config": ["must be a JSON object"]})
    merged = {**config_defaults(key), **config}
    errors: dict[str, list[str]] = {}
    for error in sorted(_validator(key).iter_errors(merged), key=lambda e: list(e.absolute_path)):
        if error.validator == "additionalProperties":
            known = set(get(key).schema.get("properties", {}))
            for name in sorted(set(merged) - known):
                errors.setdefault(name, []).append(gettext("is not a setting of this component type"))
            continue
        field = str(error.absolute_path[0]) if error.absolute_path else "config"
        if error.validator == "required":
            for name in error.validator_value:
                if name not in merged:
                    errors.setdefault(name, []).append(gettext("This field is required."))
            continue
        errors.setdefault(field, []).append(_in_words(error))
    if errors:
        raise ConfigInvalid(errors)
    return merged
