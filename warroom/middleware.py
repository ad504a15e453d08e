import zoneinfo

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from deployments.services import InvalidChange
from deployments.views import toast_response

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


class DomainErrorsMiddleware:
    """The one place a refusal becomes an answer, for every view that lets it through.

    A service function says no by raising: ``InvalidChange`` (400, or its ``http_status``:
    409 for a stale change, 503 when the task queue is down),
    Django's ``PermissionDenied`` (403), ``ObjectDoesNotExist`` (404: unknown and forbidden
    look the same). The answer fits the caller: JSON ``{"error": …}`` for the pipeline API,
    a toast for htmx, a page otherwise. A view may still catch an error to show it inside
    its own form; anything it does not catch lands here instead of becoming a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):

        if isinstance(exception, InvalidChange):
            status = getattr(exception, "http_status", 400)
            message = str(exception) or "That cannot be done now."
        elif isinstance(exception, PermissionDenied):
            status, message = 403, str(exception) or "You may not do that."
        elif isinstance(exception, ObjectDoesNotExist):
            status, message = 404, "Not found."
        else:
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"error": message}, status=status)
        if request.headers.get("HX-Request"):
            return toast_response(message, status)
        return render(request, "error.html", {"status": status, "message": message}, status=status)
