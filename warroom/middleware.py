import zoneinfo

from django.http import HttpResponseBadRequest
from django.utils import timezone

TIMEZONE_COOKIE = "warroom_tz"


class UserTimezoneMiddleware:
    """Show times in the viewer's zone.

    The browser reports its IANA zone in a cookie (set by static/js/warroom.js);
    everything is stored in UTC and only converted for display.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.COOKIES.get(TIMEZONE_COOKIE, "")
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        request.viewer_timezone = timezone.get_current_timezone_name()
        return self.get_response(request)


NUL_REFUSED = "The request contains a NUL byte (\\x00), which no field accepts."


def _has_nul(values) -> bool:
    return any("\x00" in value for value in values)


class RejectNulBytesMiddleware:
    """Answers 400 to a NUL byte anywhere in the path, a query or form parameter, a header or
    a JSON body, before any view, the session or the database sees it.

    Django forms refuse NUL in a CharField already; this covers the views that read a
    parameter directly, and PostgreSQL, which cannot store NUL in text (a 500 otherwise).
    A JSON body is checked for the raw byte and for its "\\u0000" escape.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._carries_nul(request):
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _carries_nul(request) -> bool:
        if "\x00" in request.path or "\x00" in request.path_info or _has_nul(request.headers.values()):
            return True
        for params in (request.GET, request.POST if request.method == "POST" else None):
            if params and (_has_nul(params.keys()) or any(_has_nul(params.getlist(key)) for key in params)):
                return True
        if request.content_type == "application/json":
            body = request.body
            return b"\x00" in body or b"\\u0000" in body.lower()
        return False
