SCHEDULE = {
    "coupons.coupons_expire": {"task": "coupons.coupons_expire", "schedule": 300.0},
    "coupons.coupon_gates_reconcile": {"task": "coupons.coupon_gates_reconcile", "schedule": 60.0},
}
