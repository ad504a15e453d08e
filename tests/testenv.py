"""Loaded by pytest before Django (``-p tests.testenv``): the test run's environment.

Tests use the same real PostgreSQL and Redis as `make run` (or DATABASE_URL /
REDIS_URL when set), but their own Redis database and channel prefix, so a running
dev server and a test run never see each other's pushes or tasks.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from warroom import embedded

os.environ.setdefault("WARROOM_HTTPS", "0")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # sync Playwright tests call the ORM
embedded.ensure_environment()

_redis = urlsplit(os.environ["REDIS_URL"])
os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path=f"/{os.environ.get('WARROOM_TEST_REDIS_DB', '1')}"))
os.environ["WARROOM_CHANNEL_PREFIX"] = "warroom-test"
os.environ.setdefault("WARROOM_BACKUP_DIR", str(embedded.RUN_DIR / "test-backups"))
# Fast heartbeats so worker-death tests finish in seconds, not a minute.
os.environ.setdefault("WARROOM_RUN_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("WARROOM_RUN_LOST_AFTER_SECONDS", "4")
os.environ.setdefault("WARROOM_RUN_KILL_GRACE_SECONDS", "2")
os.environ["WARROOM_CELERY_QUEUE"] = "warroom-test"
