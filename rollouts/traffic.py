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

from rollouts.models import Router, RouterKind, defined_names
from rollouts.runner import child_environment
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
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=False, env=child_environment(), stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RouterError(f"{what} could not run: {exc}") from None
    if done.returncode != 0:
        raise RouterError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[:300]}")


def apply_weight(plan, weight: int, *, reason: str) -> str:
    """Put ``weight`` % of traffic on the new version through the plan's administrator-defined
    router. Returns what was done, in words; for a manual rollout, what the person must do."""
    router = plan.router_def
    if router is None:
        return f"Set the new version's traffic to {weight} % and confirm here."
    if router.kind == RouterKind.NGINX:
        path = Path(router.upstream_file)
        previous = path.read_text() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".warroom-tmp")
        tmp.write_text(nginx_upstream(router.upstream_name, router.stable_server, router.canary_server, weight))
        tmp.replace(path)
        try:
            _run(list(router.test_argv), "nginx configuration test")
        except RouterError:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(previous)  # never leave a broken config for the next reload
            raise
        _run(list(router.reload_argv), "nginx reload")
        return f"nginx upstream {router.upstream_name}: {weight} % new, {100 - weight} % stable"
    if router.kind == RouterKind.WEBHOOK:
        body = json.dumps(
            {"deployment": plan.deployment_id, "weights": {"new": weight, "stable": 100 - weight}, "reason": reason},
            sort_keys=True,
        ).encode()
        secret = os.environ.get(router.secret_env, "")
        request = urllib.request.Request(  # noqa: S310 (an administrator's http(s) URL)
            router.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **signed_headers(secret, body)},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (an administrator's http(s) URL)
                status = response.status
        except urllib.error.HTTPError as exc:
            raise RouterError(f"router webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RouterError(f"router webhook unreachable: {getattr(exc, 'reason', exc)}") from None
        return f"webhook {status}: {weight} % new"
    raise RouterError(f"router {router.name} has an unknown kind {router.kind!r}")


def resolve_router(spec) -> tuple[Router | None, list[str]]:
    """The plan's ``router`` entry → (the administrator-defined router or None for manual, problems).

    A plan may say a router's name or "manual", nothing more: a plan that carries a router's
    files, commands, address or secret is refused, never quietly trimmed.
    """
    if spec is None or spec in (RouterKind.MANUAL, {"kind": RouterKind.MANUAL}):
        return None, []
    if isinstance(spec, dict):
        carried = [key for key in spec if key != "kind"]
        if carried:
            return None, [
                f"router: {', '.join(carried)} cannot be given in a plan — routers (their files, commands, "
                f'addresses and secrets) are defined by an administrator; name one: "router": "<name>"{defined_names(Router)}'
            ]
        return None, [f'router: name an administrator-defined router ("router": "<name>") or "manual"{defined_names(Router)}']
    if not isinstance(spec, str) or not spec.strip():
        return None, ['router must be the name of an administrator-defined router, or "manual"']
    router = Router.objects.filter(name=spec.strip()).first()
    if router is None:
        return None, [f"router: no router named {spec.strip()!r}{defined_names(Router)}"]
    return router, []
