"""Moving traffic: nginx upstream weights, a signed webhook, or a person.

Every router sets absolute weights, so applying the same stage twice (a retried
tick) does no harm.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from rollouts.models import RouterKind
from warroom.webhooks import signed_headers


class RouterError(Exception):
    """Traffic could not be moved; the message says why."""


def nginx_upstream(name: str, stable: str, canary: str, weight: int) -> str:
    """The upstream block for ``weight`` % on the canary. nginx has no weight 0: such a server is left out."""
    lines = [f"# Written by Warroom: {weight} % of traffic on the new version", f"upstream {name} {{"]
    if weight < 100:
        lines.append(f"    server {stable} weight={100 - weight};")
    if weight > 0:
        lines.append(f"    server {canary} weight={weight};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _run(argv, what):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RouterError(f"{what} could not run: {exc}") from None
    if done.returncode != 0:
        raise RouterError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[:300]}")


def apply_weight(plan, weight: int, *, reason: str) -> str:
    """Put ``weight`` % of traffic on the new version. Returns what was done, in words;
    for a manual router, what the person must do."""
    config = plan.router_config or {}
    if plan.router == RouterKind.NGINX:
        path = Path(config["upstream_file"])
        previous = path.read_text() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".warroom-tmp")
        tmp.write_text(nginx_upstream(config["upstream_name"], config["stable_server"], config["canary_server"], weight))
        tmp.replace(path)
        try:
            _run(config["test_argv"], "nginx configuration test")
        except RouterError:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(previous)  # never leave a broken config for the next reload
            raise
        _run(config["reload_argv"], "nginx reload")
        return f"nginx upstream {config['upstream_name']}: {weight} % new, {100 - weight} % stable"
    if plan.router == RouterKind.WEBHOOK:
        body = json.dumps(
            {"deployment": plan.deployment_id, "weights": {"new": weight, "stable": 100 - weight}, "reason": reason},
            sort_keys=True,
        ).encode()
        secret = os.environ.get(config.get("secret_env", ""), "")
        request = urllib.request.Request(  # noqa: S310 (validated http(s) URL)
            config["url"],
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **signed_headers(secret, body)},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (validated http(s) URL)
                status = response.status
        except urllib.error.HTTPError as exc:
            raise RouterError(f"router webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RouterError(f"router webhook unreachable: {getattr(exc, 'reason', exc)}") from None
        return f"webhook {status}: {weight} % new"
    return f"Set the new version's traffic to {weight} % and confirm here."


def validate_router(kind: str, config: dict) -> list[str]:
    problems = []
    if kind == RouterKind.NGINX:
        for key in ("upstream_file", "upstream_name", "stable_server", "canary_server"):
            if not isinstance(config.get(key), str) or not config.get(key):
                problems.append(f"router.{key} is required for nginx")
        for key in ("test_argv", "reload_argv"):
            value = config.get(key)
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                problems.append(f"router.{key} must be an argv list")
    elif kind == RouterKind.WEBHOOK:
        if not str(config.get("url", "")).startswith(("http://", "https://")):
            problems.append("router.url must be an http(s) URL")
        if not config.get("secret_env"):
            problems.append("router.secret_env must name the environment variable holding the HMAC secret")
        elif config["secret_env"] not in os.environ:
            problems.append(f"router.secret_env: {config['secret_env']} is not set")
    elif kind != RouterKind.MANUAL:
        problems.append(f"router.kind {kind!r} is not nginx, webhook or manual")
    return problems
