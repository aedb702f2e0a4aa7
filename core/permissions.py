from django.conf import settings
from django.utils.crypto import constant_time_compare
from rest_framework.permissions import BasePermission

from core.auth import EndUser


class IsEndUser(BasePermission):
    """Requires a valid user token (contracts §5)."""

    message = "Authentication with a user token is required."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, EndUser)


class HasServiceToken(BasePermission):
    """Service-to-service calls: `Authorization: Service <SERVICE_TOKEN>`."""

    message = "A valid service token is required."

    def has_permission(self, request, view) -> bool:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        return (
            scheme == "Service"
            and bool(settings.SERVICE_TOKEN)
            and constant_time_compare(token, settings.SERVICE_TOKEN)
        )
