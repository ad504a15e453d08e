import zoneinfo

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
