"""What Django's debug page and error e-mails may show of the settings."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

# A URL that carries a user or password ("redis://:secret@host", "postgresql://u:p@h/db").
_CREDENTIAL_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s]*@", re.IGNORECASE)


class WarroomExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: settings and environment names with URL, DATABASE, REDIS or DSN
    in them (DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, DATABASES …), and any value that is a
    URL with credentials or names a database or Redis server wherever it sits (CACHES'
    LOCATION, the channel layer's hosts)."""

    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DATABASE|REDIS|DSN",
        flags=re.IGNORECASE,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if type(cleansed) is str and (  # not lazy objects posing as str
            _CREDENTIAL_URL.match(cleansed) or cleansed.startswith(("redis://", "rediss://", "postgres://", "postgresql://"))
        ):
            return self.cleansed_substitute
        return cleansed
