from celery import shared_task

from coupons import services


@shared_task(name="coupons.coupons_expire", acks_late=True)
def coupons_expire_task() -> int:
    """Beat: mark unused coupons past their validity as expired (idempotent)."""
    return services.coupons_expire()


@shared_task(name="coupons.coupon_gates_reconcile", acks_late=True)
def coupon_gates_reconcile_task() -> dict:
    """Beat: set every hot pack's Redis gate to the database's remaining stock."""
    return {str(pack_id): drift for pack_id, drift in services.coupon_gates_reconcile().items()}
