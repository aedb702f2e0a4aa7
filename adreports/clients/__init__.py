"""Clients of the platforms' reporting APIs (contracts §10): one module per platform,
all with the interface of `base.ReportClient`. HTTP statuses are read here only."""

from __future__ import annotations

from adreports.clients.base import ApiError, ReportClient, ReportRow, Tokens
from adreports.clients.kuaishou import KuaishouClient
from adreports.clients.oceanengine import OceanEngineClient
from adreports.clients.tencent import TencentClient

CLIENTS: dict[str, type[ReportClient]] = {
    "oceanengine": OceanEngineClient,
    "tencent": TencentClient,
    "kuaishou": KuaishouClient,
}


def client_for(platform: str) -> ReportClient:
    return CLIENTS[platform]()


__all__ = ["CLIENTS", "ApiError", "ReportClient", "ReportRow", "Tokens", "client_for"]
