"""The daily marketing report (contract §8): built from the rollups, mailed with inline
charts and CSV/XLSX attachments, archived in DailyReport.

    report_build(day)                  -> Report (figures, charts, files; writes nothing)
    daily_report_send(day, to, force)  -> DailyReport (archive row; mails once per day
                                          unless force; each attempt and error recorded)
    daily_report_claim_due(now)        -> the day beat should send now (its row claimed), or None

States of DailyReport: pending -> sent | failed; failed -> sent (a retry); sent -> sent
only with force.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.mime.image import MIMEImage
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import SafeMIMEMultipart
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook

from activities.models import Activity, ActivityStatus
from analytics import report_charts, selectors
from analytics.models import DailyReport, DailyReportStatus, ReportSubscription
from attribution.models import TrackingLink
from core.errors import Conflict, DomainError
from core.spreadsheets import formula_neutralise

CTIT_BUCKETS = (
    ("<10s", "ctit_lt_10s"),
    ("10-60s", "ctit_10_60s"),
    ("1-10m", "ctit_1_10m"),
    ("10-60m", "ctit_10_60m"),
    ("1-24h", "ctit_1_24h"),
    (">24h", "ctit_gt_24h"),
)
TABLE_COLUMNS = (
    "clicks",
    "activations",
    "attributed",
    "fraud_rejected",
    "organic",
    "registers",
    "pays",
    "pay_amount_fen",
)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML_LINK_ROWS = 30  # the mail shows the top links; the attachments carry every link


@dataclass
class Report:
    day: date
    headline: list[dict]
    platforms: list[dict]
    links: list[dict]
    oses: list[dict]
    funnel: list[tuple[str, int]]
    ctit: list[tuple[str, int]]
    activities: list[dict]
    hours: list[dict]
    ad_discrepancies: list[dict] = field(default_factory=list)
    charts: dict[str, bytes] = field(default_factory=dict)
    text: str = ""
    html: str = ""
    csv: bytes = b""
    xlsx: bytes = b""

    @property
    def subject(self) -> str:
        return f"[Huodong] 日报 {self.day:%Y-%m-%d}"

    @property
    def basename(self) -> str:
        return f"huodong-daily-{self.day:%Y-%m-%d}"


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def _figures(totals: dict, cost_fen: float) -> dict:
    figures = {
        "clicks": totals["clicks"],
        "activations": totals["activations"],
        "attributed": totals["attributed"],
        "attribution_rate": _rate(totals["attributed"], totals["activations"]),
        "fraud_rejected": totals["fraud_rejected"],
        "registers": totals["registers"],
        "pays": totals["pays"],
        "revenue_yuan": totals["pay_amount_fen"] / 100,
        "cost_yuan": cost_fen / 100 if cost_fen else None,
        "cpa_yuan": cost_fen / 100 / totals["attributed"] if cost_fen and totals["attributed"] else None,
        "roas": totals["pay_amount_fen"] / cost_fen if cost_fen else None,
    }
    return figures


HEADLINE_LABELS = {
    "clicks": "点击 clicks",
    "activations": "激活 activations",
    "attributed": "归因 attributed",
    "attribution_rate": "归因率 attribution rate",
    "fraud_rejected": "作弊拒绝 rejected installs (fraud)",
    "registers": "注册 registers",
    "pays": "付费 pays",
    "revenue_yuan": "收入 revenue (¥)",
    "cost_yuan": "花费 cost (¥)",
    "cpa_yuan": "CPA (¥)",
    "roas": "ROAS",
}


def _show(key: str, value) -> str:
    if value is None:
        return "-"
    if key in ("attribution_rate",):
        return f"{value:.1%}"
    if key.endswith("_yuan") or key == "roas":
        return f"{value:,.2f}"
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def _percent(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"


def _change(value, other) -> float | None:
    if value is None or other in (None, 0):
        return None
    return value / other - 1


def _headline(day: date) -> list[dict]:
    today = _figures(
        selectors.link_rollup_sums_for_days(start=day, end=day + timedelta(days=1))[0],
        selectors.link_cost_for_days(start=day, end=day + timedelta(days=1)),
    )
    before = _figures(
        selectors.link_rollup_sums_for_days(start=day - timedelta(days=1), end=day)[0],
        selectors.link_cost_for_days(start=day - timedelta(days=1), end=day),
    )
    week_totals = selectors.link_rollup_sums_for_days(start=day - timedelta(days=7), end=day)[0]
    week = _figures(
        {k: v / 7 for k, v in week_totals.items()},
        selectors.link_cost_for_days(start=day - timedelta(days=7), end=day) / 7,
    )
    rows = []
    for key, label in HEADLINE_LABELS.items():
        if key in ("cost_yuan", "cpa_yuan", "roas") and today[key] is None:
            continue
        rows.append(
            {
                "key": key,
                "label": label,
                "value": today[key],
                "previous": before[key],
                "week_average": week[key],
                "vs_previous": _change(today[key], before[key]),
                "vs_week": _change(today[key], week[key]),
            }
        )
        row = rows[-1]
        row["text"] = {
            "value": _show(key, row["value"]),
            "previous": _show(key, row["previous"]),
            "week_average": _show(key, row["week_average"]),
            "vs_previous": _percent(row["vs_previous"]),
            "vs_week": _percent(row["vs_week"]),
        }
    return rows


def _table_row(row: dict) -> dict:
    out = {c: row[c] for c in TABLE_COLUMNS}
    out["attribution_rate"] = _rate(row["attributed"], row["activations"])
    out["rate_text"] = _show("attribution_rate", out["attribution_rate"])
    out["revenue_text"] = _show("revenue_yuan", row["pay_amount_fen"] / 100)
    return out


def _ad_discrepancies(day: date) -> list[dict]:
    """The ad platforms' figures that disagree with ours beyond the tolerance (issue 18)."""
    from adreports.selectors import discrepancies

    return [
        {
            "platform": item.account.get_platform_display(),
            "account": item.account.account_id,
            "account_name": item.account.name,
            "metric": item.get_metric_display(),
            "theirs": item.theirs,
            "ours": item.ours,
            "difference_percent": float(item.difference_percent),
            "large": item.large,
        }
        for item in discrepancies(day=day)
    ]


def report_build(*, day: date) -> Report:
    """Every figure, chart and file of one local day's report, from the rollups."""
    end = day + timedelta(days=1)
    totals = selectors.link_rollup_sums_for_days(start=day, end=end)[0]
    costs = selectors.link_cost_per_link_for_days(start=day, end=end)
    link_rows = selectors.link_rollup_sums_for_days(start=day, end=end, group=("link_id", "platform"))
    names = dict(
        TrackingLink.objects.filter(id__in=[r["link_id"] for r in link_rows]).values_list("id", "campaign_name")
    )
    links = []
    for row in sorted(link_rows, key=lambda r: (-r["clicks"], r["link_id"])):
        item = {"link_id": row["link_id"], "name": names.get(row["link_id"], ""), "platform": row["platform"]}
        item.update(_table_row(row))
        cost = costs.get(row["link_id"])
        item["cost_yuan"] = cost / 100 if cost else None
        item["roas"] = row["pay_amount_fen"] / cost if cost else None
        links.append(item)
    platforms = [
        {"platform": r["platform"] or "-", **_table_row(r)}
        for r in selectors.link_rollup_sums_for_days(start=day, end=end, group=("platform",))
    ]
    oses = [
        {"os": r["os"] or "-", **_table_row(r)}
        for r in selectors.link_rollup_sums_for_days(start=day, end=end, group=("os",))
    ]
    campaign = {r["activity_id"]: r for r in selectors.campaign_rollup_sums_for_days(start=day, end=end)}
    activity_names = {
        a.id: (a.name, a.status)
        for a in Activity.objects.filter(is_template=False).filter(id__in=list(campaign))
        | Activity.objects.filter(is_template=False, status=ActivityStatus.ONLINE)
    }
    activities = []
    for activity_id, (name, status) in sorted(activity_names.items()):
        row = campaign.get(activity_id, {})
        activities.append(
            {
                "activity_id": activity_id,
                "name": name,
                "status": status,
                "visitors": row.get("unique_visitors", 0),
                "page_views": row.get("page_views", 0),
                "claims": row.get("claims", 0),
                "orders": row.get("orders_placed", 0),
                "orders_paid": row.get("orders_paid", 0),
                "revenue_yuan": row.get("revenue_fen", 0) / 100,
            }
        )
    report = Report(
        day=day,
        headline=_headline(day),
        platforms=platforms,
        links=links,
        oses=oses,
        funnel=[
            ("clicks", totals["clicks"]),
            ("activations", totals["activations"]),
            ("registers", totals["registers"]),
            ("pays", totals["pays"]),
        ],
        ctit=[(label, totals[column]) for label, column in CTIT_BUCKETS],
        activities=activities,
        hours=selectors.link_rollup_hours_of_day(day=day),
        ad_discrepancies=_ad_discrepancies(day),
    )
    report.charts = {
        "hourly": report_charts.hourly_chart(report.hours),
        "funnel": report_charts.funnel_chart(report.funnel),
        "ctit": report_charts.ctit_chart(report.ctit),
    }
    context = {"report": report, "top_links": links[:HTML_LINK_ROWS], "more_links": max(0, len(links) - HTML_LINK_ROWS)}
    report.text = render_to_string("analytics/daily_report.txt", context)
    report.html = render_to_string("analytics/daily_report.html", context)
    report.csv = _csv(report)
    report.xlsx = _xlsx(report)
    return report


LINK_HEADER = [
    "date",
    "link_id",
    "link",
    "platform",
    "clicks",
    "activations",
    "attributed",
    "fraud_rejected",
    "organic",
    "attribution_rate",
    "registers",
    "pays",
    "pay_amount_fen",
    "cost_yuan",
    "roas",
]


def _link_line(report: Report, row: dict) -> list:
    return [f"{report.day:%Y-%m-%d}", row["link_id"], row["name"], row["platform"]] + [row[c] for c in LINK_HEADER[4:]]


def _csv(report: Report) -> bytes:
    """One line per tracking link (every link of the day), UTF-8 with BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(LINK_HEADER)
    for row in report.links:
        writer.writerow([formula_neutralise("" if v is None else v) for v in _link_line(report, row)])
    return buffer.getvalue().encode("utf-8-sig")


class _SafeSheet:
    """A write-only sheet whose appended cells can never run as formulas (operators name
    links and activities; contracts: every export is neutralised)."""

    def __init__(self, sheet):
        self._sheet = sheet

    def append(self, row) -> None:
        self._sheet.append([formula_neutralise(value) for value in row])


def _sheet(book: Workbook, title: str) -> _SafeSheet:
    return _SafeSheet(book.create_sheet(title))


def _xlsx(report: Report) -> bytes:
    book = Workbook(write_only=True)
    sheet = _sheet(book, "summary")
    sheet.append(["figure", "value", "previous day", "7-day average", "vs previous", "vs 7-day"])
    for row in report.headline:
        sheet.append(
            [row["label"], row["value"], row["previous"], row["week_average"], row["vs_previous"], row["vs_week"]]
        )
    for title, rows, first in (("platforms", report.platforms, "platform"), ("os", report.oses, "os")):
        sheet = _sheet(book, title)
        sheet.append([first, *TABLE_COLUMNS, "attribution_rate"])
        for row in rows:
            sheet.append([row[first], *(row[c] for c in TABLE_COLUMNS), row["attribution_rate"]])
    sheet = _sheet(book, "links")
    sheet.append(LINK_HEADER)
    for row in report.links:
        sheet.append(_link_line(report, row))
    sheet = _sheet(book, "funnel")
    sheet.append(["step", "count"])
    for step in report.funnel:
        sheet.append(list(step))
    sheet = _sheet(book, "ctit")
    sheet.append(["bucket", "attributed conversions"])
    for bucket in report.ctit:
        sheet.append(list(bucket))
    sheet = _sheet(book, "activities")
    keys = [
        "activity_id",
        "name",
        "status",
        "visitors",
        "page_views",
        "claims",
        "orders",
        "orders_paid",
        "revenue_yuan",
    ]
    sheet.append(keys)
    for row in report.activities:
        sheet.append([row[k] for k in keys])
    sheet = _sheet(book, "ad discrepancies")
    keys = ["platform", "account", "account_name", "metric", "theirs", "ours", "difference_percent", "large"]
    sheet.append(keys)
    for row in report.ad_discrepancies:
        sheet.append([row[k] for k in keys])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


class _ReportEmail(EmailMultiAlternatives):
    """mixed > (related > (alternative > (text, html), png…), xlsx, csv)."""

    def __init__(self, *args, inline_images: list[MIMEImage], **kwargs):
        super().__init__(*args, **kwargs)
        self.inline_images = inline_images

    def _create_alternatives(self, msg):
        msg = super()._create_alternatives(msg)
        related = SafeMIMEMultipart(_subtype="related", encoding=self.encoding)
        related.attach(msg)
        for image in self.inline_images:
            related.attach(image)
        return related


def report_email(*, report: Report, recipients: list[str], connection=None) -> EmailMultiAlternatives:
    images = []
    for name, png in report.charts.items():
        image = MIMEImage(png, _subtype="png")
        image.add_header("Content-ID", f"<{name}@huodong>")
        image.add_header("Content-Disposition", "inline", filename=f"{name}.png")
        images.append(image)
    message = _ReportEmail(
        subject=report.subject,
        body=report.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        connection=connection,
        inline_images=images,
    )
    message.attach_alternative(report.html, "text/html")
    message.attach(
        f"{report.basename}.xlsx", report.xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    message.attach(f"{report.basename}.csv", report.csv, "text/csv")
    return message


def report_recipients() -> list[str]:
    """Active report subscriptions, else REPORT_RECIPIENTS."""
    subscribed = list(ReportSubscription.objects.filter(active=True).values_list("email", flat=True))
    return subscribed or list(settings.REPORT_RECIPIENTS)


def _save_files(archive: DailyReport, report: Report) -> None:
    for column, suffix, data in (
        ("xlsx_file", "xlsx", report.xlsx),
        ("csv_file", "csv", report.csv),
        ("html_file", "html", report.html.encode()),
    ):
        old = getattr(archive, column)
        if old:
            old.delete(save=False)
        old.save(f"{report.basename}.{suffix}", ContentFile(data), save=False)


def daily_report_send(*, day: date, recipients: list[str] | None = None, force: bool = False) -> DailyReport:
    """Build and mail one day's report; the archive row records the files, every attempt
    and its error. A day already sent raises Conflict unless force. SMTP errors are
    recorded (status failed) and re-raised for the caller's retry."""
    recipients = list(recipients or report_recipients())
    if not recipients:
        raise DomainError(_("no recipients: add a report subscription or set REPORT_RECIPIENTS"), code="no_recipients")
    with transaction.atomic():
        archive, _created = DailyReport.objects.select_for_update().get_or_create(date=day)
        if archive.status == DailyReportStatus.SENT and not force:
            raise Conflict(
                _("the report of %(day)s was sent at %(sent_at)s; use --force to send it again")
                % {"day": day, "sent_at": archive.sent_at}
            )
        archive.attempts += 1
        archive.save(update_fields=["attempts"])
    report = report_build(day=day)
    _save_files(archive, report)
    archive.subject = report.subject
    archive.recipients = recipients
    archive.built_at = timezone.now()
    try:
        report_email(report=report, recipients=recipients, connection=get_connection()).send()
    except Exception as exc:
        archive.status = DailyReportStatus.FAILED
        archive.error = f"{type(exc).__name__}: {exc}"[:2000]
        archive.save()
        raise
    archive.status = DailyReportStatus.SENT
    archive.sent_at = timezone.now()
    archive.error = ""
    archive.save()
    return archive


def daily_report_claim_due(*, now: datetime | None = None) -> date | None:
    """The previous local day when REPORT_DAILY_AT has passed today and that day has no
    archive row yet; its pending row is created here, so a second beat tick (or a second
    beat) never queues it twice. Returns None when nothing is due."""
    local = (now or timezone.now()).astimezone(ZoneInfo(settings.TIME_ZONE))
    hour, minute = (int(part) for part in settings.REPORT_DAILY_AT.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return None
    day = local.date() - timedelta(days=1)
    _, created = DailyReport.objects.get_or_create(date=day)
    return day if created else None
