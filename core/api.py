"""The API door's shared pieces: `Idempotency-Key` handled the same way on every endpoint.

A POST that creates something (a claim, an order, a code redemption) takes an
`Idempotency-Key` header; a repeat with the same key answers what the first attempt
answered (status and body, with `Idempotent-Replayed: true`) and changes nothing.
Services know nothing of it: they return domain objects and raise `DomainError`;
the door stores the rendered answer (or the refusal) in the same transaction as
the work (core/idempotency.py).

The decorator, when the whole view is the idempotent unit::

    class ClaimView(APIView):
        @extend_schema(parameters=[IDEMPOTENCY_KEY], ...)
        @idempotent(scope="coupons.claim", fingerprint=lambda request, component_id: f"component:{component_id}")
        def post(self, request, component_id):
            claim = services.coupon_pack_claim(component_id=component_id, user_id=request.user.id)
            return Response(ClaimSerializer(claim).data, status=201)

The function, when only part of the view is (e.g. reserve under the key, then call
another company's server with no lock held)::

    reserved = idempotent_response(
        request, scope="payments.order", fingerprint=f"component:{component_id}",
        compute=lambda: Response({"order_no": services.order_reserve(
            product=product, user_id=user_id, idempotency_key=request.idempotency_key).order_no}, status=201),
    )
    if reserved.status_code != 201:
        return reserved  # the refusal, as first answered

Inside `compute` the parsed key is `request.idempotency_key`. Refusals raised there
(`DomainError`, `ApiError`) are answers too: their writes roll back, the error is
stored and replayed. Other exceptions (a bug, invalid input caught by a serializer)
store nothing: the key stays free. Deadlocks are retried (core.db.db_retry).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core.db import db_retry
from core.errors import ApiError, DomainError, api_exception_handler
from core.idempotency import idempotency_key_parse, idempotent_call

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_KEY = OpenApiParameter(
    KEY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "A unique id per attempt (printable, at most 128 characters); a repeat with the same key returns "
        "the first answer and changes nothing. Missing or invalid: 400 idempotency_key_required / "
        "idempotency_key_invalid; reused for another request: 422 idempotency_key_reused."
    ),
)

IdempotentCall = Callable[..., tuple[int, dict, bool]]
ViewMethod = TypeVar("ViewMethod", bound=Callable[..., Response])


def _end_user(request: Request) -> str:
    return str(request.user.id)


def idempotent_response(
    request: Request,
    *,
    scope: str,
    fingerprint: str,
    compute: Callable[[], Response],
    owner: Callable[[Request], str] = _end_user,
    call: IdempotentCall = idempotent_call,
    check: Callable[[], None] | None = None,
) -> Response:
    """Run `compute` once per (scope, owner, key) and answer its Response, or replay it.

    `fingerprint` names what the request asks (a repeat of the key with another
    fingerprint is refused); `owner` whose keys these are (the end user by default);
    `call` the record-keeping strategy of core/idempotency.py; `check` (only with
    `idempotent_call_once`) refusals made before the transaction."""
    key = idempotency_key_parse(request.headers.get(KEY_HEADER))
    request.idempotency_key = key  # type: ignore[attr-defined]

    def refusing_as_answered(run: Callable[[], Any]) -> Any:
        try:
            return run()
        except DomainError as exc:  # through the one mapping (core.errors), so the refusal is stored as answered
            refusal = api_exception_handler(exc, {})
            status_code = refusal.status_code if refusal is not None else 400
            raise ApiError(exc.code, exc.message, status_code, exc.details) from exc

    def rendered() -> tuple[int, dict]:
        response = refusing_as_answered(compute)
        # stored as the client saw it: JSON types only (dates, decimals, UUIDs as rendered)
        return response.status_code, json.loads(json.dumps(response.data, cls=JSONEncoder))

    extra: dict[str, Any] = {}
    if check is not None:
        extra["check"] = lambda: refusing_as_answered(check)
    status_code, body, replayed = db_retry(
        lambda: call(scope=scope, user_id=owner(request), key=key, fingerprint=fingerprint, compute=rendered, **extra)
    )
    response = Response(body, status=status_code)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def idempotent(
    *,
    scope: str,
    fingerprint: Callable[..., str],
    owner: Callable[[Request], str] = _end_user,
    call: IdempotentCall = idempotent_call,
    check: Callable[..., Any] | None = None,
) -> Callable[[ViewMethod], ViewMethod]:
    """Make a view method (`post`) idempotent under the Idempotency-Key header.

    `fingerprint(request, **url_kwargs)` names what the request asks. `check(request,
    **url_kwargs)` (with `call=idempotent_call_once` only) runs before the method's
    transaction and may refuse (reads only); what it returns reaches the method as
    its `checked` keyword."""

    def decorate(method: ViewMethod) -> ViewMethod:
        @functools.wraps(method)
        def door(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            checked: list[Any] = [None]

            # db_retry runs check and compute again, whole, after a deadlock or a
            # lock timeout: neither may change what the next attempt is given (the
            # URL's kwargs), so `checked` goes to the method in a copy of them.
            def run_check() -> None:
                assert check is not None
                checked[0] = check(request, *args, **kwargs)

            def compute() -> Response:
                if check is None:
                    return method(view, request, *args, **kwargs)
                return method(view, request, *args, **kwargs, checked=checked[0])

            return idempotent_response(
                request,
                scope=scope,
                fingerprint=fingerprint(request, *args, **kwargs),
                compute=compute,
                owner=owner,
                call=call,
                check=run_check if check is not None else None,
            )

        return door  # type: ignore[return-value]

    return decorate
