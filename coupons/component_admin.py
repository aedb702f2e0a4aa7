"""The coupon_pack component's settings screen (components/admin_extensions.py):
the pack's stock, limits and claim window and its coupon templates, created and
edited together with the component. Money in yuan; writes through
coupons.services."""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from components.admin_extensions import CheckItem, ComponentAdminExtension, RowEditor, register_admin
from components.forms import YuanField, fen_to_yuan, yuan_to_fen
from coupons import services
from coupons.models import Claim, Coupon, CouponKind, CouponPack, CouponPackItem, CouponTemplate, ValidityKind
from coupons.selectors import coupon_pack_remaining

# --- the coupon rows ------------------------------------------------------------------


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class CouponRowForm(forms.Form):
    """One coupon of the pack: what it is worth, how long it lasts, how many."""

    template_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(label=_("Coupon name"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=CouponKind.choices, initial=CouponKind.FIXED)
    value = forms.DecimalField(
        label=_("Amount off"),
        max_digits=12,
        decimal_places=2,
        min_value=0,
        help_text=_("Yuan off (e.g. 20.00); for a percentage coupon, the percent off (1-99)."),
        widget=forms.NumberInput(attrs={"step": "0.01", "style": "width:7em"}),
    )
    min_spend = YuanField(label=_("Minimum spend (yuan)"), required=False, min_value=0)
    max_discount = YuanField(label=_("Cap (yuan)"), required=False, min_value=0)
    validity_kind = forms.ChoiceField(label=_("Validity"), choices=ValidityKind.choices, initial=ValidityKind.RELATIVE)
    valid_days = forms.IntegerField(
        label=_("Days"), required=False, min_value=1, widget=forms.NumberInput(attrs={"style": "width:5em"})
    )
    valid_from = forms.DateTimeField(label=_("Valid from"), required=False, widget=DateTimeLocalInput)
    valid_until = forms.DateTimeField(label=_("Valid until"), required=False, widget=DateTimeLocalInput)
    quantity = forms.IntegerField(
        label=_("Per pack"), min_value=1, initial=1, widget=forms.NumberInput(attrs={"style": "width:4em"})
    )

    def clean(self):
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if value is not None:
            if kind == CouponKind.PERCENT:
                if value != value.to_integral_value() or not 1 <= value <= 99:
                    self.add_error("value", gettext("A percentage coupon takes a whole percent from 1 to 99."))
            elif value <= 0:
                self.add_error("value", gettext("Enter the yuan off, above zero (e.g. 20.00)."))
        min_spend = data.get("min_spend") or 0
        if kind == CouponKind.THRESHOLD and value is not None and min_spend <= value:
            self.add_error(
                "min_spend",
                gettext("The minimum spend must be above the amount off (e.g. 20 off above 100 yuan)."),
            )
        if data.get("validity_kind") == ValidityKind.ABSOLUTE:
            start, end = data.get("valid_from"), data.get("valid_until")
            if start is None:
                self.add_error("valid_from", gettext("Dated coupons need the first day they can be used."))
            if end is None:
                self.add_error("valid_until", gettext("Dated coupons need the last day they can be used."))
            if start and end and end <= start:
                self.add_error("valid_until", gettext("The end of validity must come after its start."))
        elif data.get("validity_kind") == ValidityKind.RELATIVE and not data.get("valid_days"):
            self.add_error("valid_days", gettext("How many days a coupon lasts after it is claimed (1 or more)."))
        return data

    def template_values(self) -> dict:
        data = self.cleaned_data
        percent = data["kind"] == CouponKind.PERCENT
        absolute = data["validity_kind"] == ValidityKind.ABSOLUTE
        return {
            "name": data["name"],
            "kind": data["kind"],
            "value": int(data["value"]) if percent else yuan_to_fen(data["value"]),
            "min_spend_fen": yuan_to_fen(data.get("min_spend")) or 0,
            "max_discount_fen": yuan_to_fen(data.get("max_discount")) if percent else None,
            "validity_kind": data["validity_kind"],
            "valid_from": data.get("valid_from") if absolute else None,
            "valid_until": data.get("valid_until") if absolute else None,
            "valid_days": data.get("valid_days") if not absolute else None,
        }


class CouponRowFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.has_changed() and not self._should_delete_form(f) and f.cleaned_data]
        if not kept:
            raise forms.ValidationError(gettext("A pack needs at least one coupon: fill in a row."))


def _row_initial(item: CouponPackItem) -> dict:
    template = item.template
    percent = template.kind == CouponKind.PERCENT
    return {
        "template_id": template.pk,
        "name": template.name,
        "kind": template.kind,
        "value": template.value if percent else fen_to_yuan(template.value),
        "min_spend": fen_to_yuan(template.min_spend_fen) if template.min_spend_fen else None,
        "max_discount": fen_to_yuan(template.max_discount_fen),
        "validity_kind": template.validity_kind,
        "valid_days": template.valid_days,
        "valid_from": template.valid_from,
        "valid_until": template.valid_until,
        "quantity": item.quantity,
    }


def _pack_of(component) -> CouponPack | None:
    if component is None or component.pk is None:
        return None
    return CouponPack.objects.filter(component=component).first()


class CouponPackComponentAdmin(ComponentAdminExtension):
    fieldset_title = _("Coupon pack: stock, limits and claim window")

    def form_fields(self, component) -> dict[str, forms.Field]:
        return {
            "pack_name": forms.CharField(label=_("Pack name"), max_length=100),
            "pack_description": forms.CharField(label=_("Description"), max_length=300, required=False),
            "pack_total_stock": forms.IntegerField(
                label=_("Stock (packs)"), min_value=0, help_text=_("How many packs can be claimed in total.")
            ),
            "pack_per_user_limit": forms.IntegerField(
                label=_("Claims per user"), min_value=1, max_value=32767, initial=1
            ),
            "pack_claim_starts_at": forms.SplitDateTimeField(
                label=_("Claims open at"),
                required=False,
                widget=AdminSplitDateTime,
                help_text=_("Empty: with the activity (Asia/Shanghai time)."),
            ),
            "pack_claim_ends_at": forms.SplitDateTimeField(
                label=_("Claims close at"), required=False, widget=AdminSplitDateTime
            ),
            "pack_enabled": forms.BooleanField(
                label=_("Claims enabled"), required=False, initial=True, help_text=_("Untick to stop claims at once.")
            ),
            "pack_redis_gate": forms.BooleanField(
                label=_("Hot pack (Redis gate)"),
                required=False,
                help_text=_("For very popular packs: refuses claims once sold out before they reach the database."),
            ),
        }

    def initial(self, component) -> dict:
        pack = _pack_of(component)
        if pack is None:
            return {"pack_name": component.title}
        return {
            "pack_name": pack.name,
            "pack_description": pack.description,
            "pack_total_stock": pack.total_stock,
            "pack_per_user_limit": pack.per_user_limit,
            "pack_claim_starts_at": pack.claim_starts_at,
            "pack_claim_ends_at": pack.claim_ends_at,
            "pack_enabled": pack.enabled,
            "pack_redis_gate": pack.redis_gate,
        }

    def formsets(self, component, data=None) -> list[RowEditor]:
        pack = _pack_of(component)
        initial = [_row_initial(item) for item in pack.items.select_related("template").order_by("id")] if pack else []
        formset_class = forms.formset_factory(
            CouponRowForm, formset=CouponRowFormSet, extra=1, can_delete=True, max_num=20
        )
        formset = formset_class(data=data, initial=initial, prefix="coupons")
        return [
            RowEditor(
                title=gettext("Coupons in the pack"),
                formset=formset,
                help_text=gettext(
                    "Each claim gives the user these coupons. Amounts in yuan; tick “Delete” to take a coupon out."
                ),
            )
        ]

    def clean(self, form, editors) -> None:
        data = form.cleaned_data
        start, end = data.get("pack_claim_starts_at"), data.get("pack_claim_ends_at")
        if start and end and end <= start:
            form.add_error("pack_claim_ends_at", gettext("Claims must close after they open."))
        pack = _pack_of(form.instance)
        stock = data.get("pack_total_stock")
        if pack is not None and stock is not None:
            taken = pack.total_stock - coupon_pack_remaining(pack=pack)
            if stock < taken:
                form.add_error(
                    "pack_total_stock",
                    gettext("%(taken)s packs are already taken; the stock cannot go below that.") % {"taken": taken},
                )

    def _items(self, editors) -> list[tuple[CouponTemplate, int]]:
        formset = editors[0].formset
        items: dict[int, tuple[CouponTemplate, int]] = {}
        for row in formset.forms:
            if not row.has_changed() and not row.initial:
                continue
            if formset._should_delete_form(row) or not row.cleaned_data:
                continue
            values = row.template_values()
            template = CouponTemplate.objects.filter(pk=row.cleaned_data.get("template_id") or 0).first()
            if template is None:
                template = services.coupon_template_create(**values)
            elif any(getattr(template, k) != v for k, v in values.items()):
                shared = (
                    CouponPackItem.objects.filter(template=template).exclude(pack__component_id=row.component_id)
                ).exists() or Coupon.objects.filter(template=template).exists()
                # Coupons already issued keep what they were issued as: a changed
                # coupon that users hold (or another pack shows) becomes a new one.
                template = (
                    services.coupon_template_create(**values)
                    if shared
                    else services.coupon_template_update(template=template, **values)
                )
            quantity = row.cleaned_data["quantity"]
            previous = items.get(template.pk)
            items[template.pk] = (template, quantity + (previous[1] if previous else 0))
        return list(items.values())

    def write(self, *, component, cleaned, editors, actor) -> None:
        for row in editors[0].formset.forms:
            row.component_id = component.pk
        items = self._items(editors)
        fields = {
            "name": cleaned["pack_name"],
            "description": cleaned.get("pack_description") or "",
            "total_stock": cleaned["pack_total_stock"],
            "per_user_limit": cleaned["pack_per_user_limit"],
            "claim_starts_at": cleaned.get("pack_claim_starts_at"),
            "claim_ends_at": cleaned.get("pack_claim_ends_at"),
            "enabled": cleaned.get("pack_enabled", False),
            "redis_gate": cleaned.get("pack_redis_gate", False),
        }
        pack = _pack_of(component)
        if pack is None:
            services.coupon_pack_create(component=component, items=items, **fields)
        else:
            services.coupon_pack_update(pack=pack, items=items, **fields)

    def readonly_summary(self, component) -> list[tuple[str, str]]:
        pack = _pack_of(component)
        if pack is None:
            return [(gettext("Pack"), gettext("not set up yet: fill in the pack and its coupons above"))]
        claims = Claim.objects.filter(pack=pack).count()
        return [
            (gettext("Stock left"), f"{coupon_pack_remaining(pack=pack)} / {pack.total_stock}"),
            (gettext("Claims"), str(claims)),
            (gettext("Coupons used"), str(Coupon.objects.filter(claim__pack=pack, status="used").count())),
        ]

    def links(self, component) -> list[tuple[str, ...]]:
        pack = _pack_of(component)
        if pack is None:
            return []
        return [
            (
                gettext("Claims (search, export)"),
                reverse("admin:coupons_claim_changelist") + f"?pack__id__exact={pack.pk}",
            ),
            (gettext("Coupons"), reverse("admin:coupons_coupon_changelist") + f"?claim__pack__id__exact={pack.pk}"),
            (gettext("Redeem codes"), reverse("admin:coupons_redeemcode_changelist") + f"?pack__id__exact={pack.pk}"),
            (
                gettext("Generate redeem codes…"),
                reverse("admin:coupons_couponpack_generate_codes", args=[pack.pk]),
                "coupons.change_couponpack",
            ),
        ]

    def delete_refusal(self, component) -> str | None:
        pack = _pack_of(component)
        if pack is None:
            return None
        claims = Claim.objects.filter(pack=pack).count()
        codes = pack.redeem_codes.exists()
        if not claims and not codes:
            return None
        return gettext(
            "“%(name)s” cannot be deleted: users have claimed it %(claims)s times (or hold its redeem codes) and keep "
            "their coupons. Disable it instead: untick “Enabled” (the component leaves the page) or “Claims enabled” "
            "(the pack stops handing out coupons)."
        ) % {"name": component.title or pack.name, "claims": claims}

    def checklist(self, component) -> list[CheckItem]:
        name = component.title or gettext("Coupon pack")
        pack = _pack_of(component)
        if pack is None:
            return [CheckItem("error", gettext("%s: no pack set up yet (stock and coupons).") % name)]
        out = []
        if not pack.items.exists():
            out.append(CheckItem("error", gettext("%s: the pack has no coupons.") % name))
        if coupon_pack_remaining(pack=pack) <= 0:
            out.append(CheckItem("error", gettext("%s: no stock left (raise the stock).") % name))
        if not pack.enabled:
            out.append(CheckItem("warning", gettext("%s: claims are disabled.") % name))
        activity = component.activity
        if pack.claim_ends_at and activity.starts_at and pack.claim_ends_at <= activity.starts_at:
            out.append(CheckItem("warning", gettext("%s: claims close before the activity starts.") % name))
        if not out:
            out.append(
                CheckItem(
                    "ok",
                    gettext("%(name)s: %(left)s packs in stock.")
                    % {"name": name, "left": coupon_pack_remaining(pack=pack)},
                )
            )
        return out


register_admin("coupon_pack", CouponPackComponentAdmin())
