"""The simple component types: their whole state is their config."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_noop
from rest_framework import serializers

from components.html import html_sanitize
from components.registry import ComponentType, register

HTTP_URL = r"^https?://[^\s<>\"']+$"


class BannerPublicSerializer(serializers.Serializer):
    def to_representation(self, instance) -> dict:
        config = instance.config
        return {"image": config["image"], "link": config.get("link", ""), "alt": config.get("alt", "")}


class RichTextPublicSerializer(serializers.Serializer):
    def to_representation(self, instance) -> dict:
        return {"html": html_sanitize(instance.config.get("html", ""))}


class CountdownPublicSerializer(serializers.Serializer):
    """The countdown runs to the activity's end, frozen with the snapshot."""

    def to_representation(self, instance) -> dict:
        ends_at = instance.activity.ends_at
        return {
            "label": instance.config.get("label", ""),
            "ended_text": instance.config.get("ended_text", ""),
            "ends_at": timezone.localtime(ends_at).isoformat() if ends_at else None,
        }


BANNER = register(
    ComponentType(
        key="banner",
        label="Banner 横幅",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["image"],
            "properties": {
                "image": {
                    "type": "string",
                    "title": gettext_noop("Image URL"),
                    # a web address, or an image uploaded here (/media/...)
                    "pattern": r"^(https?://[^\s<>\"']+|/media/[\w./-]+)$",
                    "maxLength": 500,
                    "x-error": gettext_noop(
                        "Enter a web address starting with http:// or https://, or upload an image."
                    ),
                },
                "link": {
                    "type": "string",
                    "title": gettext_noop("Link URL (optional)"),
                    "default": "",
                    "maxLength": 500,
                    "pattern": r"^(https?://[^\s<>\"']+)?$",
                },
                "alt": {"type": "string", "title": gettext_noop("Alt text"), "default": "", "maxLength": 120},
            },
        },
        serializer=BannerPublicSerializer,
        template="components/banner.html",
    )
)

RICH_TEXT = register(
    ComponentType(
        key="rich_text",
        label="Rich text 图文",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["html"],
            "properties": {
                "html": {
                    "type": "string",
                    "title": gettext_noop("Content (HTML)"),
                    "maxLength": 50000,
                    "x-widget": "textarea",
                },
            },
        },
        serializer=RichTextPublicSerializer,
        template="components/rich_text.html",
    )
)

COUNTDOWN = register(
    ComponentType(
        key="countdown",
        label="Countdown 倒计时",
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "label": {
                    "type": "string",
                    "title": gettext_noop("Label"),
                    "default": "距活动结束还有",
                    "maxLength": 40,
                },
                "ended_text": {
                    "type": "string",
                    "title": gettext_noop("Text once ended"),
                    "default": "活动已结束",
                    "maxLength": 40,
                },
            },
        },
        serializer=CountdownPublicSerializer,
        template="components/countdown.html",
    )
)
