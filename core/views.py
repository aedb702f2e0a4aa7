from django.http import HttpResponseNotFound, HttpResponseServerError
from django.shortcuts import render
from django.template import loader

from core.errors import json_error
from core.middleware import wants_json


def home(request):
    return render(request, "home.html")


def not_found(request, exception=None):
    if wants_json(request):
        return json_error("not_found", "Nothing here.", 404)
    return HttpResponseNotFound(loader.render_to_string("404.html", request=request))


def server_error(request):
    if wants_json(request):
        return json_error("server_error", "Something went wrong on our side; it has been logged.", 500)
    return HttpResponseServerError(loader.render_to_string("500.html"))
