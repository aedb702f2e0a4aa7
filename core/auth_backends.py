"""Login throttling for the admin (django-axes)."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lock-out check on every login that comes with an HTTP request (the admin
    login form). A login without one (the test client's `login()`, a shell) cannot be
    a password-guessing request from outside; axes would refuse it with an error."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
