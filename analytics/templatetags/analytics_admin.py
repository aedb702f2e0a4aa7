"""{% analytics_today %}: today's key figures on the admin index, for whoever may view rollups."""

from django import template
from django.urls import reverse

from analytics import dashboard

register = template.Library()


@register.inclusion_tag("admin/analytics/today.html", takes_context=True)
def analytics_today(context):
    request = context.get("request")
    if request is None or not request.user.has_perm("analytics.view_linkrollup"):
        return {"show": False}
    return {"show": True, "figures": dashboard.today_figures(), "url": reverse("admin:analytics_dashboard")}
