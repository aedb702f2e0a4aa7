"""Admin forms generated from a component type's JSON schema: one real form field
per config key (not a raw JSON box)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from components import registry

PREFIX = "cfg_"


def _types(spec: dict) -> tuple[str | None, bool]:
    """(the non-null JSON type, whether null is allowed)."""
    kind = spec.get("type")
    if isinstance(kind, list):
        nullable = "null" in kind
        rest = [k for k in kind if k != "null"]
        return (rest[0] if len(rest) == 1 else None), nullable
    return kind, False


class LinesField(forms.CharField):
    """An array of strings or integers, one item per line."""

    def __init__(self, *, item_type: str = "string", **kwargs):
        self.item_type = item_type
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "cols": 60}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        items = [line.strip() for line in text.splitlines() if line.strip()]
        if self.item_type == "integer":
            try:
                return [int(item) for item in items]
            except ValueError:
                raise forms.ValidationError(gettext("Put one whole number per line.")) from None
        return items


def _field_for(name: str, spec: dict, required: bool) -> forms.Field:
    kind, nullable = _types(spec)
    common: dict[str, Any] = {
        # the schema keeps plain (gettext_noop-marked) English; translate on display
        "label": gettext(spec["title"]) if spec.get("title") else name.replace("_", " ").capitalize(),
        "help_text": gettext(spec["description"]) if spec.get("description") else "",
        "required": required and not nullable,
    }
    if "enum" in spec:
        choices = [(v, str(v)) for v in spec["enum"] if v is not None]
        if not common["required"]:
            choices = [("", "---------"), *choices]
        coerce: Callable[[Any], Any] = type(choices[-1][0]) if choices else str
        return forms.TypedChoiceField(choices=choices, coerce=coerce, **common)
    if kind == "string":
        if spec.get("format") == "date-time":
            return forms.DateTimeField(**common)
        widget: forms.Widget | None = None
        if spec.get("x-widget") == "url" or spec.get("format") == "uri" or "url" in name or name in ("image", "link"):
            widget = forms.URLInput(attrs={"size": 70})
        elif spec.get("x-widget") == "textarea" or spec.get("maxLength", 0) > 1000:
            widget = forms.Textarea(attrs={"rows": 8, "cols": 80})
        return forms.CharField(
            max_length=spec.get("maxLength"), min_length=spec.get("minLength"), widget=widget, strip=True, **common
        )
    if kind == "integer":
        return forms.IntegerField(min_value=spec.get("minimum"), max_value=spec.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=spec.get("minimum"), max_value=spec.get("maximum"), **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    item_kind = _types(spec.get("items", {}))[0] if kind == "array" else None
    if item_kind in ("string", "integer"):
        return LinesField(item_type=item_kind, **common)
    return forms.JSONField(**common, widget=forms.Textarea(attrs={"rows": 4, "cols": 60}))


def config_fields(type_key: str) -> dict[str, forms.Field]:
    """Form fields (named `cfg_<key>`) for every property of the type's schema."""
    schema = registry.get(type_key).schema
    required = set(schema.get("required", []))
    return {
        PREFIX + name: _field_for(name, spec, name in required and "default" not in spec)
        for name, spec in schema.get("properties", {}).items()
    }


def config_initial(type_key: str, config: dict) -> dict:
    merged = {**registry.config_defaults(type_key), **(config or {})}
    return {PREFIX + k: v for k, v in merged.items()}


def config_from_cleaned(type_key: str, cleaned: dict) -> dict:
    """Turn cleaned form values back into a config (empty optional values fall back
    to the schema default; nullable ones become null)."""
    schema = registry.get(type_key).schema
    config: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        value = cleaned.get(PREFIX + name)
        kind, nullable = _types(spec)
        if value in (None, "") and kind != "boolean":
            if nullable:
                config[name] = None
            elif kind == "string" and "default" not in spec and name in schema.get("required", []):
                config[name] = ""
            continue  # the default fills it in
        if isinstance(value, datetime):
            value = timezone.localtime(value).isoformat()
        config[name] = value
    return config


def config_errors_to_fields(form: forms.Form, errors: dict[str, list[str]]) -> None:
    for key, messages in errors.items():
        field = PREFIX + key if PREFIX + key in form.fields else None
        for message in messages:
            form.add_error(field, message)


def config_summary(config: dict, limit: int = 120) -> str:
    text = json.dumps(config, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- money: operators read and type yuan (19.90); fen stays the stored unit -------


def fen_to_yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else (Decimal(fen) / 100).quantize(Decimal("0.01"))


def yuan_to_fen(yuan: Decimal | None) -> int | None:
    return None if yuan is None else int((yuan * 100).to_integral_value())


class YuanField(forms.DecimalField):
    """An amount in yuan with at most two decimals (`19.90`); `clean` gives yuan
    as a Decimal, `yuan_to_fen` turns it into the stored fen."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "0.01", "style": "width:8em"}))
        super().__init__(**kwargs)
        self.error_messages["max_decimal_places"] = gettext_lazy("Enter yuan with at most two decimals, e.g. 19.90.")
        self.error_messages["invalid"] = gettext_lazy("Enter an amount in yuan, e.g. 19.90.")


class CostInYuanForm(forms.ModelForm):
    """A ModelForm for a model with a `cost_fen` column that the operator types in yuan
    (`cost_yuan`, two decimals); the form fills `cost_fen` (cleaned data and instance).
    Subclasses give Meta (model, fields without cost_fen)."""

    cost_yuan = YuanField(label=gettext_lazy("Cost (yuan)"), min_value=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.setdefault("cost_yuan", fen_to_yuan(self.instance.cost_fen))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("cost_yuan") is not None:
            cleaned["cost_fen"] = self.instance.cost_fen = yuan_to_fen(cleaned["cost_yuan"])
        return cleaned
