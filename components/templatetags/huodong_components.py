from django import template
from django.utils.safestring import mark_safe

from components.html import html_sanitize

register = template.Library()


@register.filter
def sanitized_html(value: str) -> str:
    """Render operator HTML after sanitising it (defence in depth: snapshots already
    hold sanitised HTML)."""
    return mark_safe(html_sanitize(value))


@register.filter
def reader_value(field) -> str:
    """A bound form field's value as a reader (the read-only analyst) reads it: the
    label of a choice, yes/no, "-" when empty."""
    from django.utils.translation import gettext

    value = field.value()
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if value in (None, ""):
        return "-"
    choices = getattr(field.field, "choices", None)
    if choices:
        labels = {str(key): label for key, label in choices if not isinstance(label, (list, tuple))}
        return str(labels.get(str(value), value))
    return str(value)
