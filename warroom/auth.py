"""Password abuse limits: django-axes locks out an account, and separately an address,
after too many wrong passwords at login — and the same count covers the password a
sign-off is confirmed with, so guessing there is no way around the login's limit.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate


class PasswordLockedOut(Exception):
    """Too many wrong passwords from this account or address: refused even when right."""

    def __init__(self):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        super().__init__(
            f"Too many wrong passwords for this account or from this address: password checks are refused for {minutes} minutes."
        )


def client_ip(request) -> str:
    """The address a request came from: REMOTE_ADDR, or the proxy's X-Forwarded-For entry behind one."""
    if settings.BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, except where there is no request (management commands, the test client's
    login()): there is no address to count against, so those go straight to the next backend.
    Every web login (Django's LoginView, the admin) passes its request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def is_locked_out(request, username: str) -> bool:
    return AxesProxyHandler.is_locked(request, credentials={"username": username})


def confirm_password(request, user, password: str) -> bool:
    """True if `password` is `user`'s; a wrong one counts as a failed login of this account
    from this address. Raises PasswordLockedOut while either is locked out, right password or not."""
    username = user.get_username()
    if is_locked_out(request, username):
        raise PasswordLockedOut
    if not password:
        return False
    authenticated = authenticate(request, username=username, password=password)
    if authenticated is not None and authenticated.pk == user.pk:
        return True
    if is_locked_out(request, username):
        raise PasswordLockedOut
    return False
