"""URLs for foundation tests: the real ones plus probes."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns
from core.api import idempotent
from core.permissions import IsEndUser


class WhoAmI(APIView):
    permission_classes = [IsEndUser]

    def get(self, request):
        return Response({"user_id": request.user.id})


class SoldOutProbe(APIView):
    def get(self, request):
        from core.errors import DomainError

        class SoldOut(DomainError):
            code = "sold_out"

        raise SoldOut("all gone")


class NotFoundProbe(APIView):
    def get(self, request):
        from core.errors import NotFound

        raise NotFound("no such pack")


class IdempotentProbe(APIView):
    """POST /api/v1/test/idempotent/<n>: writes a row (a group named after n) under the
    Idempotency-Key door; n == 0 is refused by a domain rule after writing."""

    permission_classes = [IsEndUser]

    @idempotent(scope="test.probe", fingerprint=lambda request, n: f"n:{n}")
    def post(self, request, n: int):
        from datetime import UTC, datetime
        from decimal import Decimal

        from django.contrib.auth.models import Group

        from core.errors import Conflict

        group = Group.objects.create(name=f"probe-{n}-{request.user.id}-{request.idempotency_key}")
        if n == 0:
            raise Conflict("Zero is taken.")
        body = {"group": group.pk, "n": n, "at": datetime(2026, 12, 2, tzinfo=UTC), "price": Decimal("1.50")}
        return Response(body, status=201)


def missing(request):
    from django.http import Http404

    raise Http404("no such thing")


def boom(request):
    raise RuntimeError("secret internals: password=hunter2")


urlpatterns = [
    path("api/v1/test/whoami", WhoAmI.as_view()),
    path("api/v1/test/boom", boom),
    path("api/v1/test/missing", missing),
    path("api/v1/test/sold-out", SoldOutProbe.as_view()),
    path("api/v1/test/not-found", NotFoundProbe.as_view()),
    path("api/v1/test/idempotent/<int:n>", IdempotentProbe.as_view()),
    *real_urlpatterns,
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
