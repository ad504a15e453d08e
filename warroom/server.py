"""How Warroom serves HTTP and websockets: gunicorn managing uvicorn worker processes.

Why this pair: gunicorn is the well-kept process manager (pre-forks N processes, restarts
one that dies, graceful restarts on SIGHUP); uvicorn is a fast ASGI server with
websockets and uvloop. N processes share one port, so N sync views run at once instead of
one (Django runs sync views on one thread per process), and every push crosses processes
through the Redis channel layer, as it must once there are several machines.

``WARROOM_WEB_PROCESSES`` sets N (default: the machine's CPU count, at least 2).
"""

from __future__ import annotations

import os
import sys

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    # Django has no lifespan handlers; proxy headers are trusted only from the settings'
    # WARROOM_BEHIND_PROXY (Django reads X-Forwarded-Proto itself).
    CONFIG_KWARGS = {
        "lifespan": "off",
        "ws": "websockets-sansio",
        # Pushes are a few kB of HTML to every screen: compressing each copy for each socket
        # costs more server CPU than the bytes it saves on a war room's network.
        "ws_per_message_deflate": False,
        "proxy_headers": False,
        "server_header": False,
    }


def web_processes() -> int:
    raw = os.environ.get("WARROOM_WEB_PROCESSES", "")
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise SystemExit(f"WARROOM_WEB_PROCESSES={raw!r} is not a whole number") from None
        if value < 1:
            raise SystemExit(f"WARROOM_WEB_PROCESSES={value} must be at least 1")
        return value
    return max(2, os.cpu_count() or 1)


def argv(python: str, host: str, port: str | int, *, processes: int | None = None) -> list[str]:
    """The command line that serves Warroom: used by `make run`, the image and the tests."""
    return [
        python,
        "-m",
        "gunicorn",
        "warroom.asgi:application",
        "--worker-class",
        "warroom.server.Worker",
        "--workers",
        str(processes or web_processes()),
        "--bind",
        f"{host}:{port}",
        "--graceful-timeout",
        "10",
        "--timeout",
        "120",
        "--access-logfile",
        "-",
        "--access-logformat",
        '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
    ]


def main() -> None:
    """`python -m warroom.server`: serve on WARROOM_HOST:WARROOM_PORT (the image's command)."""
    command = argv(sys.executable, os.environ.get("WARROOM_HOST", "127.0.0.1"), os.environ.get("WARROOM_PORT", "8000"))
    os.execv(command[0], command)  # noqa: S606 (our own argv, no shell)


if __name__ == "__main__":
    main()
