"""Paid sales: writes.

Order life cycle (every move recorded in OrderEvent with its cause):

    pending --paid--> paid --refunded--> refunded
    pending --expired | payment_failed | payment_closed | payment_unavailable--> closed
    closed  --paid_after_close--> paid          (the user paid at the last second, stock allowed)
    paid    --reconciled_not_paid--> closed     (reconciliation: the service says no money was taken)

Moves are conditional updates on the current state, so concurrent writers (the
result handler, the expiry job, reconciliation) can never move an order twice.
Stock: `Product.held` counts orders holding stock and can never exceed `stock`
(conditional update + CheckConstraint); the per-user limit is a conditional update
of `ProductBuyer.held`.

Lock order, on every path: order, then product, then buyer (`ProductBuyer`). A
path that starts without an order (placing one) locks product, then buyer.

Modules, by sub-domain (import from `payments.services`, which re-exports them):

- `orders`: stock, state moves, placing, closing, voiding and refunding an order
- `results`: applying a payment result (event or query answer), or many at once
- `expiry`: closing pending orders past their expiry
- `reconciliation`: the daily 对账 against the payment service
- `products`: creating and editing products (the admin's and the demo's only write path)

Services raise the `core.errors.DomainError` family and return domain objects;
the API door maps errors to statuses, the admin to messages.
"""

from payments.services.expiry import order_expire, orders_expire
from payments.services.orders import (
    PAID_TYPE,
    order_checkout,
    order_close,
    order_place,
    order_refund,
    order_reserve,
    order_void,
    orders_refund,
    product_for_sale,
)
from payments.services.products import PRODUCT_FIELDS, product_check, product_create, product_delete, product_update
from payments.services.reconciliation import reconciliation_run
from payments.services.results import payment_result_apply, payment_results_apply_many

__all__ = [
    "PAID_TYPE",
    "PRODUCT_FIELDS",
    "order_checkout",
    "order_close",
    "order_expire",
    "order_place",
    "order_refund",
    "order_reserve",
    "order_void",
    "orders_expire",
    "orders_refund",
    "payment_result_apply",
    "payment_results_apply_many",
    "product_check",
    "product_create",
    "product_delete",
    "product_for_sale",
    "product_update",
    "reconciliation_run",
]
