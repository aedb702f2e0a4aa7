from django import template
from django.utils.safestring import mark_safe

from components.html import html_sanitize

register = template.Library()


@register.filter
def sanitized_html(value: str) -> str:
    """Render operator HTML after sanitising it (defence in depth: snapshots already
    hold sanitised HTML)."""
    return mark_safe(html_sanitize(value))
