"""`make bench [CASE=name]`: one JSON object per line per case on stdout.

Runs against the real services (embedded by default) with its own database
(`bench_warroom`), Redis database 2 and channel prefix, so it never touches the
development data or a running test suite. Progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from warroom import embedded


def _prepare_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warroom.settings")
    os.environ.setdefault("WARROOM_HTTPS", "0")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ["WARROOM_LOG_LEVEL"] = os.environ.get("WARROOM_LOG_LEVEL", "WARNING")
    embedded.ensure_environment()
    redis_url = urlsplit(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = urlunsplit(redis_url._replace(path="/2"))
    os.environ["WARROOM_CHANNEL_PREFIX"] = "warroom-bench"
    os.environ["WARROOM_CELERY_QUEUE"] = "warroom-bench"
    os.environ["WARROOM_TEST_DATABASE"] = "bench_warroom"


def main(argv: list[str]) -> int:
    _prepare_environment()
    import django

    django.setup()
    from django.db import connection

    from bench import cases

    wanted = argv[1:] or list(cases.CASES)
    unknown = [name for name in wanted if name not in cases.CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(cases.CASES)}", file=sys.stderr)
        return 2
    print("[bench] preparing database bench_warroom …", file=sys.stderr)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)
    from deployments.live import redis_client

    redis_client().flushdb()
    for name in wanted:
        started = time.monotonic()
        print(f"[bench] {name} …", file=sys.stderr)
        for result in cases.CASES[name]():
            print(json.dumps({"case": name, **result}), flush=True)
        print(f"[bench] {name} took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
