"""Fixtures for exports: EXPORT_URL on a local folder or on a loopback S3 (moto's server)."""

from __future__ import annotations

import pytest
from pyarrow import fs as pafs

from exports import storage


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def export_url(request, settings, tmp_path):
    """EXPORT_URL for each backend; yields (url, a local copy function for readers)."""
    if request.param == "local":
        settings.EXPORT_URL = str(tmp_path / "export")
    else:
        import boto3

        endpoint = request.getfixturevalue("s3_server")
        settings.EXPORT_S3_ENDPOINT_URL = endpoint
        settings.AWS_ACCESS_KEY_ID = "test-key"
        settings.AWS_SECRET_ACCESS_KEY = "test-secret"
        bucket = f"raw-{tmp_path.name.lower().replace('_', '-')[-40:]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test-key",
            aws_secret_access_key="test-secret",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        settings.EXPORT_URL = f"s3://{bucket}/huodong/raw"
    return settings.EXPORT_URL


@pytest.fixture
def local_copy(tmp_path):
    """The export tree as a local folder (DuckDB reads S3 only through its httpfs
    extension, which it would download): a copy of every file, or the folder itself."""

    def copy() -> str:
        dest = storage.destination()
        if isinstance(dest.filesystem, pafs.LocalFileSystem):
            return dest.base
        target = tmp_path / "s3-copy"
        pafs.copy_files(dest.base, str(target), source_filesystem=dest.filesystem)
        return str(target)

    return copy


# the real doors' fixtures, shared with their own apps' tests
from tests.attribution.conftest import ad_platform, make_link  # noqa: E402,F401
from tests.coupons.conftest import claim  # noqa: E402,F401
from tests.payments.conftest import fake_payments, order_post  # noqa: E402,F401
