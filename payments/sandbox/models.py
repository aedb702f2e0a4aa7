from __future__ import annotations

from django.db import models


class SandboxPaycode(models.Model):
    """A paycode of the sandbox payment service. Its own table: the sandbox plays
    another company's server and shares nothing with the orders."""

    paycode = models.CharField(max_length=64, unique=True)
    merchant_order_no = models.CharField(max_length=64, unique=True)
    amount_fen = models.PositiveIntegerField()
    subject = models.CharField(max_length=255)
    user_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, default="PENDING")
    channel = models.CharField(max_length=16, blank=True)
    transaction_id = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "payments"
        db_table = "payments_sandbox_paycode"
        verbose_name = "sandbox paycode"

    def __str__(self) -> str:
        return self.paycode
