from __future__ import annotations

from django.db import models


class SandboxPostback(models.Model):
    """A postback the sandbox ad platform received. Its own table: the sandbox plays
    the ad platforms' servers and shares nothing with the conversions."""

    platform = models.CharField(max_length=16)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    query = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    event_type = models.CharField(max_length=32, blank=True, help_text="The platform's event code as received.")
    answer = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "attribution"
        db_table = "attribution_sandbox_postback"
        verbose_name = "sandbox postback"
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.platform} {self.method} {self.path}"
