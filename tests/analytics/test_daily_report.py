"""The daily report (contract §8) mailed through a real SMTP server on loopback
(aiosmtpd) and parsed back with the email package; figures from traffic rolled up by the
real rollup service; --force; retries of a failing SMTP server recorded on the archive."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import socket
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from celery.exceptions import Retry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from openpyxl import load_workbook

from analytics import reports, services
from analytics.models import CampaignRollup, DailyReport, DailyReportStatus, LinkRollup

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
IDFA2 = "1E2DFA89-496A-47FD-9941-DF1FC4E6484A"
OAID = "1fe3b0ab-9c1d-4f62-a0e1-c57c0b1d22aa"


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.failures_left = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        if self.failures_left:
            self.failures_left -= 1
            return "451 4.3.0 try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "huodong@example.com"
    settings.REPORT_RECIPIENTS = ["marketing@example.com"]
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def day_traffic(traffic, make_link, make_activity, base_hour):
    """Within base_hour (one local day): 3 clicks on an iOS link, 1 on an Android link,
    2 attributed activations, 1 organic, a register and a pay of 19.90; rolled up by
    the real service. The day before: a rollup row of 10 clicks."""
    ios = make_link("oceanengine", os="ios", campaign_name="春节 iOS")
    android = make_link("tencent", os="android", campaign_name="春节 Android")
    traffic.click(ios, base_hour + timedelta(minutes=1), idfa=IDFA)
    traffic.click(ios, base_hour + timedelta(minutes=2), idfa=IDFA)
    traffic.click(ios, base_hour + timedelta(minutes=3), idfa=IDFA2)
    traffic.click(android, base_hour + timedelta(minutes=4), oaid=OAID)
    traffic.activate(base_hour + timedelta(minutes=2, seconds=5), idfa=IDFA, user_id="u1")  # CTIT 5 s
    traffic.activate(base_hour + timedelta(minutes=34), os="android", oaid=OAID)  # CTIT 30 min
    traffic.activate(base_hour + timedelta(minutes=35), idfa="F0000000-0000-4000-8000-00000000000F")  # organic
    traffic.deep_event("register", base_hour + timedelta(minutes=40), idfa=IDFA)
    traffic.deep_event("pay", base_hour + timedelta(minutes=41), idfa=IDFA, amount_fen=1990)
    services.rollup_range(start=base_hour, end=base_hour + timedelta(hours=1))
    day = base_hour.astimezone(SHANGHAI).date()
    previous = base_hour - timedelta(days=1)
    LinkRollup.objects.create(
        bucket_start=previous, bucket_minutes=60, app_id="com.kuaipao.app", platform="oceanengine",
        link_id=ios.id, os="ios", clicks=10, rolled_at=timezone.now(),
    )  # fmt: skip
    services.rollup_day(day=previous.astimezone(SHANGHAI).date())  # days are read from the day rows
    activity = make_activity("spring", name="春节活动")
    CampaignRollup.objects.create(
        bucket_start=base_hour, activity_id=activity.id, component_id=0, page_views=50, unique_visitors=20,
        claims=7, orders_placed=3, orders_paid=2, revenue_fen=5800, rolled_at=timezone.now(),
    )  # fmt: skip
    return {"day": day, "ios": ios, "android": android, "activity": activity}


def _parts(message):
    return {part.get_content_type(): part for part in message.walk()}


def test_report_mail_parsed_back_has_subject_bodies_inline_chart_attachments_and_the_days_figures(smtp, day_traffic):
    day = day_traffic["day"]
    call_command("report_daily", "--date", day.isoformat())
    [message] = smtp.messages
    assert message["Subject"] == f"[Huodong] 日报 {day:%Y-%m-%d}"
    assert message["To"] == "marketing@example.com"
    assert message.get_content_type() == "multipart/mixed"
    related = message.get_payload()[0]
    assert related.get_content_type() == "multipart/related"
    alternative = related.get_payload()[0]
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in alternative.get_payload())
    assert "点击 clicks: 4 (-60.0% vs 10" in text  # 4 clicks against 10 the day before
    assert "激活 activations: 3" in text and "归因 attributed: 2" in text
    assert "归因率 attribution rate: 66.7%" in text
    assert "注册 registers: 1" in text and "付费 pays: 1" in text and "收入 revenue (¥): 19.90" in text
    assert "春节活动" in text and "visitors 20, claims 7, orders 3, revenue 58.00" in text
    assert '<td class="clicks">4</td>' in html
    images = [p for p in related.get_payload()[1:] if p.get_content_type() == "image/png"]
    cids = {p["Content-ID"].strip("<>") for p in images}
    assert "hourly@huodong" in cids and "cid:hourly@huodong" in html
    assert all(p.get_content().startswith(b"\x89PNG") for p in images)
    attachments = {p.get_filename(): p.get_payload(decode=True) for p in message.iter_attachments()}
    csv_bytes = attachments[f"huodong-daily-{day:%Y-%m-%d}.csv"]
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    lines = {r["link_id"]: r for r in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8-sig")))}
    ios = lines[str(day_traffic["ios"].id)]
    assert (ios["link"], ios["clicks"], ios["attributed"], ios["pays"], ios["pay_amount_fen"]) == (
        "春节 iOS", "3", "1", "1", "1990",
    )  # fmt: skip
    assert lines[str(day_traffic["android"].id)]["attributed"] == "1"
    book = load_workbook(io.BytesIO(attachments[f"huodong-daily-{day:%Y-%m-%d}.xlsx"]))
    funnel = {row[0]: row[1] for row in book["funnel"].iter_rows(min_row=2, values_only=True)}
    assert funnel == {"clicks": 4, "activations": 3, "registers": 1, "pays": 1}
    ctit = {row[0]: row[1] for row in book["ctit"].iter_rows(min_row=2, values_only=True)}
    assert (ctit["<10s"], ctit["10-60m"]) == (1, 1)
    archive = DailyReport.objects.get(date=day)
    assert (archive.status, archive.attempts, archive.recipients) == ("sent", 1, ["marketing@example.com"])
    assert archive.csv_file.read() == csv_bytes


def test_a_day_already_sent_is_sent_again_only_with_force(smtp, day_traffic):
    day = day_traffic["day"].isoformat()
    call_command("report_daily", "--date", day, "--to", "a@example.com")
    with pytest.raises(CommandError, match="--force"):
        call_command("report_daily", "--date", day)
    assert len(smtp.messages) == 1
    call_command("report_daily", "--date", day, "--to", "b@example.com", "c@example.com", "--force")
    assert len(smtp.messages) == 2 and smtp.messages[1]["To"] == "b@example.com, c@example.com"
    assert DailyReport.objects.get(date=day).attempts == 2


def test_a_failing_smtp_server_is_retried_by_the_task_and_each_failure_recorded(smtp, day_traffic):
    from analytics.tasks import daily_report_send_task

    day = day_traffic["day"]
    smtp.failures_left = 2
    # tests run tasks eagerly: each apply() is one delivery of the task; a failure asks
    # the worker for a retry (Retry, with backoff) and is recorded on the archive row
    for attempt in (1, 2):
        with pytest.raises(Retry):
            daily_report_send_task.apply(args=[day.isoformat()])
        archive = DailyReport.objects.get(date=day)
        assert (archive.status, archive.attempts) == (DailyReportStatus.FAILED, attempt)
        assert "SMTPDataError" in archive.error and "451" in archive.error
    daily_report_send_task.apply(args=[day.isoformat()])
    archive.refresh_from_db()
    assert (archive.status, archive.attempts, archive.error, len(smtp.messages)) == ("sent", 3, "", 1)


def test_beat_queues_the_previous_days_report_once_after_report_daily_at(smtp, day_traffic, settings):
    from analytics.tasks import daily_report_tick_task

    settings.REPORT_DAILY_AT = "09:00"
    day = day_traffic["day"]
    morning = timezone.make_aware(timezone.datetime.combine(day + timedelta(days=1), timezone.datetime.min.time()))
    assert reports.daily_report_claim_due(now=morning + timedelta(hours=8, minutes=59)) is None
    assert reports.daily_report_claim_due(now=morning + timedelta(hours=9, minutes=1)) == day
    assert reports.daily_report_claim_due(now=morning + timedelta(hours=9, minutes=6)) is None
    DailyReport.objects.filter(date=day).delete()
    now = timezone.now()
    daily_report_tick_task.apply()
    daily_report_tick_task.apply()
    yesterday = timezone.localdate(now) - timedelta(days=1)
    if (timezone.localtime(now).hour, timezone.localtime(now).minute) >= (9, 0):
        assert DailyReport.objects.get(date=yesterday).status == "sent"
        assert len(smtp.messages) == 1


def test_without_email_host_development_writes_mail_files_under_var(day_traffic, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    settings.REPORT_RECIPIENTS = ["marketing@example.com"]
    reports.daily_report_send(day=day_traffic["day"])
    [written] = list(tmp_path.iterdir())
    assert f"日报 {day_traffic['day']:%Y-%m-%d}".encode() in written.read_bytes() or b"Subject:" in written.read_bytes()


def test_the_admin_shows_the_development_mail_folder_to_those_who_may_view_reports(
    day_traffic, settings, tmp_path, staff_client
):
    from core.services import ANALYST_GROUP

    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    settings.REPORT_RECIPIENTS = ["marketing@example.com"]
    reports.daily_report_send(day=day_traffic["day"])
    [written] = list(tmp_path.iterdir())
    analyst = staff_client(ANALYST_GROUP)
    assert "/admin/analytics/dailyreport/mail/" in analyst.get("/admin/analytics/dailyreport/").text
    folder = analyst.get("/admin/analytics/dailyreport/mail/")
    assert folder.status_code == 200 and written.name in folder.text
    assert f"[Huodong] 日报 {day_traffic['day']:%Y-%m-%d}" in folder.text  # the decoded subject
    mail = analyst.get(f"/admin/analytics/dailyreport/mail/{written.name}/")
    assert mail.status_code == 200 and mail["Content-Type"].startswith("text/plain")
    assert b"Content-ID: <hourly@huodong>" in mail.content
    assert analyst.get("/admin/analytics/dailyreport/mail/settings.py/").status_code == 404  # .log files only
    assert analyst.get("/admin/analytics/dailyreport/mail/other.log/").status_code == 404
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # mail is sent: no folder
    assert analyst.get("/admin/analytics/dailyreport/mail/").status_code == 404
    assert "/admin/analytics/dailyreport/mail/" not in analyst.get("/admin/analytics/dailyreport/").text


def test_archive_in_the_admin_lists_and_downloads_files_for_analysts_who_cannot_write(
    smtp, day_traffic, settings, tmp_path, staff_client
):
    from core.services import ANALYST_GROUP, OPERATOR_GROUP

    settings.MEDIA_ROOT = str(tmp_path)
    day = day_traffic["day"]
    call_command("report_daily", "--date", day.isoformat())
    archive = DailyReport.objects.get(date=day)
    analyst = staff_client(ANALYST_GROUP)
    page = analyst.get("/admin/analytics/dailyreport/")
    assert page.status_code == 200 and f"/admin/analytics/dailyreport/{archive.pk}/download/csv/" in page.text
    download = analyst.get(f"/admin/analytics/dailyreport/{archive.pk}/download/csv/")
    assert download.status_code == 200 and b"".join(download.streaming_content).startswith(b"\xef\xbb\xbf")
    assert f"huodong-daily-{day:%Y-%m-%d}.csv" in download["Content-Disposition"]
    assert analyst.get("/admin/analytics/reportsubscription/add/").status_code == 403
    assert analyst.post(f"/admin/analytics/dailyreport/{archive.pk}/delete/", {"post": "yes"}).status_code == 403
    operator = staff_client(OPERATOR_GROUP)
    response = operator.post("/admin/analytics/reportsubscription/add/", {"email": "Boss@Example.com", "active": "on"})
    assert response.status_code == 302, response.content
    assert reports.report_recipients() == ["boss@example.com"]


def test_the_report_lists_ad_platform_discrepancies_and_its_files_never_carry_a_formula(traffic, make_link, base_hour):
    from adreports.models import AdDiscrepancy
    from adreports.services import ad_account_create

    link = make_link("oceanengine", os="ios", campaign_name='=HYPERLINK("http://evil.example")')
    traffic.click(link, base_hour + timedelta(minutes=1), idfa=IDFA)
    services.rollup_range(start=base_hour, end=base_hour + timedelta(hours=1))
    day = base_hour.astimezone(SHANGHAI).date()
    account = ad_account_create(platform="oceanengine", account_id="1700000000001", app_id="app", name="=cmd|x")
    AdDiscrepancy.objects.create(
        account=account, day=day, metric="conversions", theirs=120, ours=80,
        difference_percent="50.0", large=True, checked_at=timezone.now(),
    )  # fmt: skip

    report = reports.report_build(day=day)

    assert "theirs 120 vs ours 80 (50.0%) LARGE" in report.text
    assert "<b>50.0%</b>" in report.html
    rows = list(csv.reader(io.StringIO(report.csv.decode("utf-8-sig"))))
    assert rows[1][2] == "'" + '=HYPERLINK("http://evil.example")'
    book = load_workbook(io.BytesIO(report.xlsx))
    cells = [cell.value for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert not any(isinstance(value, str) and value.startswith("=") for value in cells)
    (discrepancy,) = list(book["ad discrepancies"].iter_rows(min_row=2, values_only=True))
    assert discrepancy[1:6] == ("1700000000001", "'=cmd|x", "their conversions vs our successful postbacks", 120, 80)


@pytest.fixture
def injection_rejected():
    """The click-injection rule rejects (CTIT under 10 s) instead of flagging."""
    from alerts.fraud import fraud_rule_set

    fraud_rule_set(kind="injection", mode="reject", params={"min_ctit_seconds": 10})


def test_installs_a_fraud_rule_rejected_are_a_line_of_the_mailed_report_its_tables_and_files(
    smtp, injection_rejected, day_traffic
):
    from attribution.models import Conversion

    day, ios = day_traffic["day"], day_traffic["ios"]
    rejected = Conversion.objects.get(fraud_status="rejected")  # the 5-second install on the iOS link
    assert (rejected.link_id, rejected.fraud_rule) == (ios.id, "injection")

    call_command("report_daily", "--date", day.isoformat())

    [message] = smtp.messages
    alternative = message.get_payload()[0].get_payload()[0]
    text, html = (p.get_content() for p in alternative.get_payload())
    assert "作弊拒绝 rejected installs (fraud): 1 " in text
    assert "归因 attributed: 2" in text  # rejected installs stay attributed (to the link that won), counted apart
    assert "- oceanengine: clicks 3, activations 1, attributed 1 (100.0%), rejected (fraud) 1," in text
    assert "- tencent: clicks 1, activations 1, attributed 1 (100.0%), rejected (fraud) 0," in text
    assert f"- #{ios.id} 春节 iOS (oceanengine): clicks 3, activations 1, attributed 1, rejected (fraud) 1," in text
    assert '<td class="fraud_rejected">1</td>' in html
    attachments = {p.get_filename(): p.get_payload(decode=True) for p in message.iter_attachments()}
    lines = csv.DictReader(io.StringIO(attachments[f"huodong-daily-{day:%Y-%m-%d}.csv"].decode("utf-8-sig")))
    assert {r["link_id"]: r["fraud_rejected"] for r in lines} == {
        str(ios.id): "1",
        str(day_traffic["android"].id): "0",
        "0": "0",
    }
    book = load_workbook(io.BytesIO(attachments[f"huodong-daily-{day:%Y-%m-%d}.xlsx"]))
    header, *rows = book["platforms"].iter_rows(values_only=True)
    by_platform = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert (by_platform["oceanengine"]["fraud_rejected"], by_platform["tencent"]["fraud_rejected"]) == (1, 0)
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["作弊拒绝 rejected installs (fraud)"] == 1


def test_charts_draw_chinese_labels_with_a_cjk_font_when_one_is_installed(recwarn):
    from matplotlib import font_manager

    from analytics import report_charts

    if report_charts.cjk_font() is None:
        pytest.skip("no CJK font installed (scripts/ensure-system-deps.sh installs fonts-noto-cjk)")
    family = report_charts.font_family()
    assert family[0] in report_charts.CJK_FONTS
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert font_manager.get_font(path).family_name == family[0]  # resolves to the CJK file, not DejaVu
    hours = [{"hour": h, "clicks": h, "activations": h // 2} for h in range(24)]
    png = report_charts.hourly_chart(hours)
    assert png.startswith(b"\x89PNG")
    assert not [w for w in recwarn if "missing from font" in str(w.message)]  # 点击, 激活 … drawn, no boxes
