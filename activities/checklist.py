"""The publish checklist: what an operator checks before a draft goes live, in
words. Errors block publishing from the admin; warnings are shown and confirmed."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext

from activities.models import Activity
from components import registry
from components.admin_extensions import CheckItem, admin_extension
from components.models import Component


def _label(component: Component) -> str:
    try:
        type_label = str(registry.get(component.type).label)
    except registry.UnknownComponentType:
        type_label = component.type
    return f"{type_label} “{component.title}”" if component.title else type_label


def publish_checklist(activity: Activity, *, now=None) -> list[CheckItem]:
    now = now or timezone.now()
    out: list[CheckItem] = []
    starts, ends = activity.starts_at, activity.ends_at
    when = gettext("%Y-%m-%d %H:%M (Asia/Shanghai)")
    if ends is None:
        out.append(CheckItem("warning", gettext("No end time: the page stays online until someone ends it.")))
    elif ends <= now:
        out.append(CheckItem("error", gettext("The end time has already passed: set a later end.")))
    if starts and ends and ends <= starts:
        out.append(CheckItem("error", gettext("The end must come after the start.")))
    if starts is None or starts <= now:
        out.append(
            CheckItem("warning", gettext("No start time in the future: the page goes online as soon as you publish."))
        )
    elif not (ends and ends <= starts):
        out.append(
            CheckItem(
                "ok",
                gettext("Online from %(start)s") % {"start": timezone.localtime(starts).strftime(when)}
                + (gettext(" to %(end)s") % {"end": timezone.localtime(ends).strftime(when)} if ends else ""),
            )
        )
    components = list(Component.objects.filter(activity=activity).select_related("activity").order_by("position", "id"))
    enabled = [c for c in components if c.enabled]
    if not enabled:
        out.append(CheckItem("error", gettext("No enabled component: add one or tick “Enabled”.")))
    for component in enabled:
        label = _label(component)
        try:
            registry.config_validate(component.type, component.config)
        except registry.UnknownComponentType:
            out.append(CheckItem("error", gettext("%s: this component type no longer exists; delete it.") % label))
            continue
        except registry.ConfigInvalid:
            out.append(CheckItem("error", gettext("%s: its settings are incomplete; open and save them.") % label))
            continue
        items = admin_extension(component.type).checklist(component)
        out.extend(items or [CheckItem("ok", gettext("%s: configured.") % label)])
    disabled = len(components) - len(enabled)
    if disabled:
        out.append(CheckItem("warning", gettext("%s disabled component(s) stay off the page.") % disabled))
    return out


def checklist_blocks(items: list[CheckItem]) -> bool:
    return any(item.level == "error" for item in items)
