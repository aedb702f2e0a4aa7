from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SandboxPostback(models.Model):
    """A postback the sandbox ad platform received. Its own table: the sandbox plays
    the ad platforms' servers and shares nothing with the conversions."""

    platform = models.CharField(max_length=16, verbose_name=_("platform"))
    method = models.CharField(max_length=8, verbose_name=_("method"))
    path = models.CharField(max_length=500, verbose_name=_("path"))
    query = models.JSONField(default=dict, verbose_name=_("query"))
    body = models.TextField(blank=True, verbose_name=_("body"))
    event_type = models.CharField(
        max_length=32, blank=True, help_text=_("The platform's event code as received."), verbose_name=_("event type")
    )
    answer = models.TextField(verbose_name=_("answer"))
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))

    class Meta:
        verbose_name_plural = _("sandbox postbacks")
        app_label = "attribution"
        db_table = "attribution_sandbox_postback"
        verbose_name = _("sandbox postback")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.platform} {self.method} {self.path}"
