"""Traffic for rollup tests: clicks through the real click path at a chosen time,
activations and deep events through attribution's services."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from attribution import clicks, services
from tests.activities.conftest import make_activity, operator, publish  # noqa: F401 (fixtures)
from tests.attribution.conftest import ad_platform, click_params, make_link  # noqa: F401 (fixtures)


class _Clock:
    """`attribution.clicks.time` with time_ns pinned to a chosen moment."""

    def __init__(self):
        self.at: datetime | None = None

    def time_ns(self) -> int:
        return int(self.at.timestamp() * 1_000_000) * 1000

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def base_hour() -> datetime:
    """A whole UTC hour two hours ago: click indexes and windows behave as for real traffic."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


@pytest.fixture
def traffic(client, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(clicks, "time", clock)

    class Traffic:
        def click(self, link, at: datetime, *, status: int = 200, token: str | None = None, **device) -> dict:
            clock.at = at
            params = click_params(link.platform, "http://127.0.0.1:9", os=link.os, **device)
            response = client.get(f"/t/{link.platform}/{token or link.token}?{urlencode(params)}")
            assert response.status_code == status, response.content
            return params

        def activate(self, at: datetime, *, os: str = "ios", user_id: str | None = None, **device):
            return services.activation_record(
                event_id=str(uuid.uuid4()),
                app_id="com.kuaipao.app",
                os=os,
                user_id=user_id,
                device=device,
                ip=None,
                ua=None,
                occurred_at=at,
            )

        def deep_event(self, event_type: str, at: datetime, *, amount_fen: int | None = None, **device) -> str:
            return services.deep_event_record(
                event_id=str(uuid.uuid4()),
                event_type=event_type,
                app_id="com.kuaipao.app",
                user_id=None,
                device=device,
                occurred_at=at,
                amount_fen=amount_fen,
            )

    return Traffic()
