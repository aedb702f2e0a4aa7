"""URLs for foundation tests: the real ones plus two probes."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns
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
    *real_urlpatterns,
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
