SCHEDULE = {
    "coupons-expire": {"task": "coupons.tasks.coupons_expire_task", "schedule": 300.0},
    "coupons-gates-reconcile": {"task": "coupons.tasks.coupon_gates_reconcile_task", "schedule": 60.0},
}
