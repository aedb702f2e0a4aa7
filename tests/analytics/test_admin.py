"""The analytics admin: rollups read-only, cost CSV upload by operators, analysts read only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics.models import LinkCost
from core.services import ANALYST_GROUP, OPERATOR_GROUP

pytestmark = pytest.mark.django_db


def _csv(token: str, cost: str = "99.90") -> SimpleUploadedFile:
    return SimpleUploadedFile("costs.csv", f"link_token,day,cost_yuan\n{token},2026-11-30,{cost}\n".encode())


def test_operator_uploads_costs_and_a_bad_file_changes_nothing(make_link, staff_client):
    link = make_link("oceanengine", os="ios")
    operator = staff_client(OPERATOR_GROUP)
    response = operator.post("/admin/analytics/linkcost/upload/", {"file": _csv(link.token, "12x")})
    assert response.status_code == 200 and "Line 2" in response.content.decode()
    assert not LinkCost.objects.exists()
    response = operator.post("/admin/analytics/linkcost/upload/", {"file": _csv(link.token)})
    assert response.status_code == 302
    assert LinkCost.objects.get().cost_fen == 9990
    assert operator.get("/admin/analytics/linkrollup/").status_code == 200
    assert operator.get("/admin/analytics/linkrollup/add/").status_code == 403


def test_analyst_reads_rollups_and_costs_but_cannot_upload(make_link, staff_client):
    link = make_link("oceanengine", os="ios")
    analyst = staff_client(ANALYST_GROUP)
    assert analyst.get("/admin/analytics/linkrollup/").status_code == 200
    assert analyst.get("/admin/analytics/linkcost/").status_code == 200
    assert analyst.post("/admin/analytics/linkcost/upload/", {"file": _csv(link.token)}).status_code == 403
    assert analyst.get("/admin/analytics/linkcost/add/").status_code == 403
    assert not LinkCost.objects.exists()


def test_operator_types_a_link_cost_in_yuan_and_reads_it_in_yuan(make_link, staff_client):
    link = make_link("oceanengine", os="ios")
    operator = staff_client(OPERATOR_GROUP)
    data = {"link": link.pk, "day": "2026-11-20", "cost_yuan": "1234.50", "note": ""}
    assert operator.post("/admin/analytics/linkcost/add/", data).status_code == 302
    assert LinkCost.objects.get().cost_fen == 123450
    assert "1,234.50" in operator.get("/admin/analytics/linkcost/").content.decode()
    refused = operator.post("/admin/analytics/linkcost/add/", {**data, "day": "2026-11-21", "cost_yuan": "-1"})
    assert refused.status_code == 200 and LinkCost.objects.count() == 1
