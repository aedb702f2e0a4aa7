"""URLs for foundation tests: the real ones plus two probes."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.permissions import IsEndUser
from config.urls import urlpatterns as real_urlpatterns


class WhoAmI(APIView):
    permission_classes = [IsEndUser]

    def get(self, request):
        return Response({"user_id": request.user.id})


class SoldOutProbe(APIView):
    def get(self, request):
        from config.errors import DomainError

        class SoldOut(DomainError):
            code = "sold_out"

        raise SoldOut("all gone")


class NotFoundProbe(APIView):
    def get(self, request):
        from config.errors import NotFound

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

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
