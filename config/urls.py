from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import health, observability, views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics_view, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the admin's language switch
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", views.home, name="home"),
    # Each app owns its URLs, full paths included (contracts §6 and §1).
    path("", include("activities.urls")),
    path("", include("components.urls")),
    path("", include("listings.urls")),
    path("", include("coupons.urls")),
    path("", include("attribution.urls")),
    path("", include("payments.urls")),
    path("", include("adreports.urls")),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
