from __future__ import annotations

import pytest

from tests.alerts.fakes import ChatRobots, SmtpServer
from tests.attribution.conftest import ad_platform, make_link  # noqa: F401 (fixtures)

SECRETS = {"dingtalk": "SEC-ding-密钥", "feishu": "feishu-secret", "webhook": "hook-secret"}


@pytest.fixture
def robots():
    server = ChatRobots(SECRETS)
    yield server
    server.close()


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.close()
