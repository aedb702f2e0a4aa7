from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SandboxPaycode(models.Model):
    """A paycode of the sandbox payment service. Its own table: the sandbox plays
    another company's server and shares nothing with the orders."""

    paycode = models.CharField(max_length=64, unique=True, verbose_name=_("paycode"))
    merchant_order_no = models.CharField(max_length=64, unique=True, verbose_name=_("merchant order no"))
    amount_fen = models.PositiveIntegerField(verbose_name=_("amount fen"))
    subject = models.CharField(max_length=255, verbose_name=_("subject"))
    user_id = models.CharField(max_length=64, verbose_name=_("user id"))
    status = models.CharField(max_length=16, default="PENDING", verbose_name=_("status"))
    channel = models.CharField(max_length=16, blank=True, verbose_name=_("channel"))
    transaction_id = models.CharField(max_length=64, blank=True, verbose_name=_("transaction id"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name_plural = _("sandbox paycodes")
        app_label = "payments"
        db_table = "payments_sandbox_paycode"
        verbose_name = _("sandbox paycode")

    def __str__(self) -> str:
        return self.paycode
