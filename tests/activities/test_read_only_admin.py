"""The read-only analyst walks the operator's screens and is offered no control that
writes: no buttons, no editable fields, no action select, no add, delete, upload,
generate-codes, publish or roll-back link. Controls are gated the Django way
(has_change_permission, has_add_permission, user.has_perm), and the screens behind
them refuse the analyst (403) anyway. The operator sees the same controls on the
same screens (the check finds them)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from django.core.files import File
from django.urls import reverse

from activities import services
from core.services import ANALYST_GROUP, OPERATOR_GROUP, groups_sync, staff_user_ensure
from coupons.services import coupon_pack_create
from listings import importing
from tests.coupons.factories import CouponTemplateFactory

pytestmark = pytest.mark.django_db

WRITING_HREF = re.compile(r"/(add|delete|upload|generate-codes|publish|rollback)/")


class _Controls(HTMLParser):
    """The controls that write in a page's #content (search and filter forms, GET,
    only read; hidden inputs carry no choice)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.form_method: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form_method = a.get("method", "get").lower()
            return
        in_post_form = self.form_method == "post"
        if self.form_method == "get":
            return
        kind = a.get("type", "text" if tag == "input" else "submit").lower()
        text = self.get_starttag_text() or tag
        if tag == "button" or (tag == "input" and kind in ("submit", "image", "file")):
            self.found.append(text)
        elif tag in ("input", "select", "textarea") and in_post_form and kind != "hidden":
            self.found.append(text)
        elif tag == "select" and a.get("name") == "action":
            self.found.append(text)
        elif tag == "a" and (
            {"addlink", "deletelink"} & set(a.get("class", "").split()) or WRITING_HREF.search(a.get("href", ""))
        ):
            self.found.append(text)

    def handle_endtag(self, tag):
        if tag == "form":
            self.form_method = None


def writing_controls(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    page = response.content.decode()
    content = page.split('id="content"', 1)[1].split('id="footer"', 1)[0]
    parser = _Controls()
    parser.feed("<div " + content)
    return parser.found


@pytest.fixture
def built():
    """An activity as an operator leaves it: published twice (a revision to roll
    back to), a coupon pack with its coupons, a listing component with an upload."""
    groups_sync()
    operator = staff_user_ensure(username="operator", password="operator-demo-2026", group=OPERATOR_GROUP)
    analyst = staff_user_ensure(username="analyst", password="analyst-demo-2026", group=ANALYST_GROUP)
    activity = services.activity_create(actor=operator, name="Spring", slug="spring")
    pack_component = services.component_create(activity=activity, actor=operator, type="coupon_pack", title="Pack")
    pack = coupon_pack_create(
        component=pack_component,
        name="Spring pack",
        total_stock=50,
        items=[(CouponTemplateFactory(kind="fixed", value=500, min_spend_fen=0), 1)],
    )
    listing = services.component_create(activity=activity, actor=operator, type="listing", title="Homes")
    csv = "房源编号,城市,标题,价格（元）\nsh-1,上海,江景两居,8500000\nsh-2,上海,滨江三居,not a price\n".encode()
    job = importing.listing_import_start(
        component=listing, upload=File(io.BytesIO(csv), name="homes.csv"), filename="homes.csv",
        dry_run=True, run_async=False,
    )  # fmt: skip
    job = importing.listing_import_run(job_id=job.pk)
    services.activity_publish(activity=activity, actor=operator)
    services.activity_update(activity=activity, actor=operator, name="Spring fair")
    services.activity_publish(activity=activity, actor=operator)
    return {
        "operator": operator,
        "analyst": analyst,
        "activity": activity,
        "pack": pack,
        "pack_component": pack_component,
        "listing": listing,
        "job": job,
    }


def _screens(built) -> dict[str, str]:
    return {
        "index": reverse("admin:index"),
        "activities": reverse("admin:activities_activity_changelist"),
        "activity": reverse("admin:activities_activity_change", args=[built["activity"].pk]),
        "pack settings": reverse("admin:components_component_change", args=[built["pack_component"].pk]),
        "listing settings": reverse("admin:components_component_change", args=[built["listing"].pk]),
        "packs": reverse("admin:coupons_couponpack_changelist"),
        "pack": reverse("admin:coupons_couponpack_change", args=[built["pack"].pk]),
        "listings": reverse("admin:listings_listing_changelist"),
        "uploads": reverse("admin:listings_importjob_changelist"),
        "upload result": reverse("admin:listings_importjob_change", args=[built["job"].pk]),
    }


def test_the_analyst_is_offered_no_control_that_writes_where_the_operator_is(client, built):
    client.force_login(built["operator"])
    operator_sees = {name: writing_controls(client, url) for name, url in _screens(built).items()}
    client.force_login(built["analyst"])
    analyst_sees = {name: writing_controls(client, url) for name, url in _screens(built).items()}

    assert {name: found for name, found in analyst_sees.items() if found} == {}
    # the operator's screens hold the controls the analyst's lack
    assert all(operator_sees[name] for name in ("index", "activity", "pack settings", "pack", "upload result"))
    activity = " ".join(operator_sees["activity"])
    assert "hd-publish" in activity and "/rollback/" in activity and "hd-up" in activity
    assert "/generate-codes/" in " ".join(operator_sees["pack settings"])
    assert "/generate-codes/" in " ".join(operator_sees["pack"])
    assert "/upload/" in " ".join(operator_sees["listing settings"])
    assert "/upload/" in " ".join(operator_sees["upload result"])


def test_the_analyst_still_reads_what_the_screens_show(client, built):
    client.force_login(built["analyst"])
    pack_page = client.get(_screens(built)["pack settings"]).content.decode()
    assert "Spring pack" in pack_page
    coupons = pack_page.split('data-rows="coupons"', 1)[1].split("</fieldset>", 1)[0]
    assert "<td>Fixed amount off (立减)</td>" in coupons  # a choice as its label, not its key
    assert "<td>N days from the claim</td>" in coupons and "<td>fixed</td>" not in coupons
    assert f"/admin/coupons/claim/?pack__id__exact={built['pack'].pk}" in pack_page  # read-only screens stay linked
    activity_page = client.get(_screens(built)["activity"]).content.decode()
    assert activity_page.count("hd-revisions") == 1 and ">r1<" in activity_page and ">r2<" in activity_page
    job_page = client.get(_screens(built)["upload result"]).content.decode()
    assert f"/admin/listings/importjob/{built['job'].pk}/errors/" in job_page  # the error file is a read


def test_the_screens_behind_the_writing_controls_refuse_the_analyst(client, built):
    client.force_login(built["analyst"])
    activity, pack, job = built["activity"], built["pack"], built["job"]
    revision = activity.revisions.order_by("number").first()
    assert client.get(reverse("admin:coupons_couponpack_generate_codes", args=[pack.pk])).status_code == 403
    assert client.get(reverse("admin:listings_importjob_upload")).status_code == 403
    assert client.get(reverse("admin:activities_activity_publish", args=[activity.pk])).status_code == 403
    for url in (
        reverse("admin:activities_activity_rollback", args=[activity.pk, revision.pk]),
        reverse("admin:activities_activity_status", args=[activity.pk, "offline"]),
        reverse("admin:activities_activity_save_template", args=[activity.pk]),
        reverse("admin:listings_importjob_apply", args=[job.pk]),
    ):
        assert client.post(url).status_code == 403, url
    activity.refresh_from_db()
    assert activity.status == "online" and activity.revisions.count() == 2  # nothing changed
