"""Login throttling for the back-office and the admin (django-axes)."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login made through a request (the login and admin forms).

    Authentication with no request (Django's test client, management code) has no client address to
    throttle by; it goes on to the next backend instead of failing.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
