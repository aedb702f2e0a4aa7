"""The site's favicon and, with the local media folder, uploaded images."""

from django.urls import path, re_path

from components import views

urlpatterns = [
    path("favicon.ico", views.favicon, name="favicon"),
    re_path(r"^media/(?P<path>.+)$", views.media, name="media"),
]
