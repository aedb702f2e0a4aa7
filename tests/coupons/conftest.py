import pytest

from tests.coupons.factories import coupon_pack_make


@pytest.fixture
def pack(db):
    return coupon_pack_make()


@pytest.fixture
def claim(user_client):
    """claim(pack, user_id="10086", key=None) -> response of the claim API."""
    counter = iter(range(1, 1_000_000))

    def do(pack, user_id: str = "10086", key: str | None = None):
        key = key or f"key-{next(counter)}"
        return user_client(user_id).post(
            f"/api/v1/components/{pack.component_id}/claim", HTTP_IDEMPOTENCY_KEY=key, format="json"
        )

    return do
