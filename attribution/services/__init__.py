"""Attribution writes, by sub-domain (import from `attribution.services`, which re-exports them):

- `links`: tracking links and their Redis replica
- `activations`: matching an activation to its click (the decision is explained by
  `selectors.activation_explain`), recording the conversion; `activations_record_many`
  does the same for a consumer batch, set-based (same rules, same end state)
- `deep_events`: registrations and payments, attached or kept until the activation
- `postbacks`: planning, delivering (through `attribution.client`), retrying, releasing
- `test_devices`: the team's devices, and forgetting a device

Lock order: an activation locks its device's rows (DeviceLock, in key order) before
anything else; a conversion's row is updated before a child row is inserted (the
insert's foreign-key check would take a shared lock, and two upgrades deadlock).
Services raise the `core.errors.DomainError` family, never HTTP errors.
"""

from attribution.services.activations import (
    TRACE_MAX_CANDIDATES,
    Activation,
    ActivationOutcome,
    activation_record,
    activations_record_many,
)
from attribution.services.deep_events import deep_event_record, pending_events_retry
from attribution.services.links import (
    LINK_FIELDS,
    tracking_link_create,
    tracking_link_delete,
    tracking_link_sync,
    tracking_link_update,
    tracking_links_resync,
)
from attribution.services.postbacks import (
    BACKOFF_SCHEDULE,
    CLAIM_SECONDS,
    MAX_ATTEMPTS,
    DeliveryOutcome,
    DeliveryResult,
    conversion_release,
    conversions_release,
    postback_backoff,
    postback_deliver,
    postback_plan,
    postback_retry,
    postback_wanted,
    postbacks_plan_new,
    postbacks_retry,
    postbacks_sweep,
)
from attribution.services.test_devices import device_forget, test_device_delete, test_device_forget, test_device_save

__all__ = [
    "BACKOFF_SCHEDULE",
    "CLAIM_SECONDS",
    "LINK_FIELDS",
    "MAX_ATTEMPTS",
    "TRACE_MAX_CANDIDATES",
    "Activation",
    "ActivationOutcome",
    "DeliveryOutcome",
    "DeliveryResult",
    "activation_record",
    "activations_record_many",
    "conversion_release",
    "conversions_release",
    "deep_event_record",
    "device_forget",
    "pending_events_retry",
    "postback_backoff",
    "postback_deliver",
    "postback_plan",
    "postback_retry",
    "postback_wanted",
    "postbacks_plan_new",
    "postbacks_retry",
    "postbacks_sweep",
    "test_device_delete",
    "test_device_forget",
    "test_device_save",
    "tracking_link_create",
    "tracking_link_delete",
    "tracking_link_sync",
    "tracking_link_update",
    "tracking_links_resync",
]
