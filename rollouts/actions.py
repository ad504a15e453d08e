"""What each automated step does, for real: pg_dump, migrations, smoke checks, maintenance.

Every function takes a RunContext and the target, logs as it goes, and returns the
result (artifacts, check results) or raises ActionFailed with the reason in words.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError

from checklists.models import StepAction
from rollouts.controller import validate_plan
from rollouts.models import Target
from rollouts.runner import ActionFailed, RunContext, mask
from warroom.embedded import pg_bin_dir

CONNECT_TRIES = 3


# --- validation of a step's action settings (at save time) --------------------------------


def validate_action(action: str, config: dict) -> None:
    """Refuse a bad definition when the runbook is saved, naming the field."""
    if not action:
        return
    if action not in StepAction.values:
        raise ValidationError({"action": f"Unknown action {action!r}: one of {', '.join(StepAction.values)}."})
    if not isinstance(config, dict):
        raise ValidationError({"action_config": "Must be an object."})
    if action == StepAction.ROLLOUT:
        problems = validate_plan(config)
        if problems:
            raise ValidationError({"action_config": "; ".join(problems)})
        return
    if action == StepAction.COMMAND and not isinstance(config.get("command"), str):
        raise ValidationError({"action_config": 'A command step names an admin-defined command: {"command": "restart"}.'})
    if action == StepAction.SMOKE:
        checks = config.get("checks")
        if not isinstance(checks, list) or not checks:
            raise ValidationError({"action_config": 'Smoke steps need "checks": a list of HTTP or SQL checks.'})
        for index, check in enumerate(checks, 1):
            _validate_check(index, check)


def _validate_check(index: int, check) -> None:
    where = f"checks[{index}]"
    if not isinstance(check, dict):
        raise ValidationError({"action_config": f"{where} must be an object."})
    kind = check.get("type")
    if kind == "http":
        if check_path(check.get("url")) is None:
            raise ValidationError(
                {
                    "action_config": f"{where}.url {check.get('url')!r}: a smoke check names a path on its target "
                    '("{base_url}/health" or "/health"); the address itself is the target\'s, defined by an administrator.'
                }
            )
        if str(check.get("method", "GET")).upper() not in ("GET", "HEAD", "POST"):
            raise ValidationError({"action_config": f"{where}.method must be GET, HEAD or POST."})
        for key in ("expect_status", "max_ms"):
            if key in check and not isinstance(check[key], int):
                raise ValidationError({"action_config": f"{where}.{key} must be a whole number."})
    elif kind == "sql":
        if not isinstance(check.get("query"), str) or not check["query"].strip():
            raise ValidationError({"action_config": f"{where}.query is required for an SQL check."})
    else:
        raise ValidationError({"action_config": f'{where}.type must be "http" or "sql".'})


# --- helpers ------------------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """A PostgreSQL client tool matching the server: WARROOM_PG_BIN_DIR, else pgserver's bundled 16."""
    configured = settings.WARROOM_PG_BIN_DIR
    if configured:
        return str(Path(configured) / name)

    bundled = pg_bin_dir() / name
    return str(bundled) if bundled.exists() else (shutil.which(name) or name)


def libpq_env(database_url: str) -> tuple[str, dict]:
    """The URL without its password (argv is visible in ps), and PGPASSWORD for the child."""
    parts = urlsplit(database_url)
    env = {}
    if parts.password:
        env["PGPASSWORD"] = parts.password
        netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
        database_url = urlunsplit(parts._replace(netloc=netloc))
    return database_url, env


def _require_database(target: Target) -> str:
    url = target.database_url()
    if not url:
        raise ActionFailed(f"Target {target.name} has no database configured.")
    return url


def _where(database_url: str) -> str:
    parts = urlsplit(database_url)
    host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("host", "local socket")
    return f"{host}:{parts.port or 5432}"


def connect(ctx: RunContext, database_url: str):
    """Connect with bounded retries; a target that is down fails with the reason in words."""
    last = None
    for attempt in range(1, CONNECT_TRIES + 1):
        try:
            return psycopg.connect(database_url, connect_timeout=5, autocommit=True)
        except psycopg.OperationalError as exc:
            last = exc
            ctx.log(f"[warroom] connection attempt {attempt}/{CONNECT_TRIES} to {_where(database_url)} failed")
            time.sleep(min(2**attempt * 0.25, 2))
    reason = str(last).strip().splitlines()[0] if last else "unknown error"
    raise ActionFailed(f"Cannot connect to {_where(database_url)} after {CONNECT_TRIES} tries: {mask(reason, ctx.secrets)}")


# --- backup ------------------------------------------------------------------------------------


def backup(ctx: RunContext, target: Target, config: dict) -> dict:
    url = _require_database(target)
    connect(ctx, url).close()  # fail fast, in words, when the database is down
    store = Path(settings.WARROOM_BACKUP_DIR) / target.name
    store.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    final = store / f"{target.name}-{stamp}-run{ctx.run.pk}.dump"
    partial = final.with_suffix(".dump.partial")
    dsn, env = libpq_env(url)
    started = time.monotonic()
    code = ctx.run_process([pg_tool("pg_dump"), "--format=custom", "--verbose", f"--file={partial}", f"--dbname={dsn}"], env=env)
    if code != 0:
        partial.unlink(missing_ok=True)
        raise ActionFailed(f"pg_dump exited with code {code}")
    size = partial.stat().st_size
    if size == 0:
        partial.unlink(missing_ok=True)
        raise ActionFailed("pg_dump wrote an empty file")
    digest = hashlib.sha256()
    with partial.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    ctx.log(f"[warroom] {size} bytes, sha256 {digest.hexdigest()}")
    code = ctx.run_process([pg_tool("pg_restore"), "--list", str(partial)], env=env)
    if code != 0:
        raise ActionFailed(f"pg_restore --list could not read the backup (exit {code})")
    partial.rename(final)  # only a complete, readable dump gets its final name
    result = {
        "path": str(final),
        "size_bytes": size,
        "sha256": digest.hexdigest(),
        "duration_s": round(time.monotonic() - started, 2),
        "listed": True,
        "verified": True,
    }
    if target.verify_restore or config.get("verify_restore"):
        result["restore_check"] = _test_restore(ctx, url, final, env)
        result["verified"] = result["restore_check"]["ok"]
        if not result["verified"]:
            raise ActionFailed("The test restore does not match the source: " + result["restore_check"]["detail"])
    result["removed_old"] = _apply_retention(ctx, store, target.backup_keep)
    return result


def _largest_tables(conn, limit=5) -> dict[str, int]:
    rows = conn.execute(
        "SELECT schemaname || '.' || relname FROM pg_stat_user_tables ORDER BY n_live_tup DESC, relname LIMIT %s", [limit]
    ).fetchall()
    counts = {}
    for (name,) in rows:
        schema, table = name.split(".", 1)
        counts[name] = conn.execute(
            psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table))
        ).fetchone()[0]
    return counts


def _test_restore(ctx: RunContext, url: str, dump: Path, env: dict) -> dict:
    try:
        return _restore_and_compare(ctx, url, dump, env)
    except psycopg.Error as exc:
        reason = mask(str(exc).strip().splitlines()[0], ctx.secrets)
        raise ActionFailed(f"Test restore impossible ({reason}); the target's user needs CREATEDB for it") from None


def _restore_and_compare(ctx: RunContext, url: str, dump: Path, env: dict) -> dict:
    scratch = f"warroom_restore_check_{ctx.run.pk}"
    with connect(ctx, url) as conn:
        source_counts = _largest_tables(conn)
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(scratch)))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(scratch)))
    parts = urlsplit(url)
    scratch_url = urlunsplit(parts._replace(path="/" + scratch))
    try:
        scratch_dsn, _ = libpq_env(scratch_url)
        code = ctx.run_process([pg_tool("pg_restore"), "--no-owner", f"--dbname={scratch_dsn}", str(dump)], env=env)
        with connect(ctx, scratch_url) as conn:
            restored = {
                name: conn.execute(
                    psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(*map(psycopg.sql.Identifier, name.split(".", 1)))
                ).fetchone()[0]
                for name in source_counts
            }
    finally:
        with connect(ctx, url) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(scratch)))
    mismatched = {n: (source_counts[n], restored[n]) for n in source_counts if source_counts[n] != restored[n]}
    ctx.log(f"[warroom] test restore: {len(source_counts)} largest tables compared, {len(mismatched)} differ")
    return {
        "ok": code == 0 and not mismatched,
        "tables": source_counts,
        "detail": ", ".join(f"{n}: {a} vs {b}" for n, (a, b) in mismatched.items()) or f"pg_restore exit {code}",
    }


def _apply_retention(ctx: RunContext, store: Path, keep: int) -> list[str]:
    dumps = sorted(store.glob("*.dump"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in dumps[max(keep, 1) :]:
        old.unlink(missing_ok=True)
        removed.append(old.name)
        ctx.log(f"[warroom] retention: removed {old.name}")
    return removed


# --- migrate -------------------------------------------------------------------------------------


def migration_env(target: Target) -> tuple[dict, list[str]]:
    """The migration's environment (only what the target defines) and the secrets in it (to mask in its output)."""
    env = {}
    secrets = []
    for name, spec in target.migrate_env.items():
        if spec == "@database_url":
            value = target.database_url()
            secrets += [p for p in [urlsplit(value).password] if p]
        elif spec.startswith("$"):
            value = os.environ.get(spec[1:], "")
            secrets.append(value)
        else:
            value = spec
        env[name] = value
    return env, secrets


def migrate(ctx: RunContext, target: Target, config: dict) -> dict:
    if not target.migrate_argv:
        raise ActionFailed(f"Target {target.name} has no migration command.")
    env, secrets = migration_env(target)
    ctx.secrets.extend(secrets)
    started = time.monotonic()
    code = ctx.run_process(
        list(target.migrate_argv), env=env, cwd=target.migrate_cwd or None, timeout=target.migrate_timeout_seconds
    )
    ctx.run.exit_code = code
    if code != 0:
        raise ActionFailed(f"The migration command exited with code {code}")
    return {"exit_code": code, "duration_s": round(time.monotonic() - started, 2)}


# --- smoke ---------------------------------------------------------------------------------------


def smoke(ctx: RunContext, target: Target, config: dict) -> dict:
    results = []
    for check in config.get("checks", []):
        ctx.check_cancelled()
        result = _http_check(ctx, target, check) if check.get("type") == "http" else _sql_check(ctx, target, check)
        results.append(result)
        ctx.log(f"[{'PASS' if result['ok'] else 'FAIL'}] {result['name']}: {result['detail']}")
    failed = [r for r in results if not r["ok"]]
    outcome = {"checks": results, "passed": len(results) - len(failed), "failed": len(failed)}
    if failed:
        ctx.run.result = outcome
        raise ActionFailed(
            f"{len(failed)} of {len(results)} smoke checks failed: " + "; ".join(f"{r['name']}: {r['detail']}" for r in failed)
        )
    return outcome


def check_path(url) -> str | None:
    """The path a smoke check asks for on its target ("{base_url}/x" or "/x"), or None if it names another address."""
    if not isinstance(url, str):
        return None
    path = url.removeprefix("{base_url}")
    if not path.startswith("/") or path.startswith("//") or "{" in path:
        return None
    if any(c.isspace() or ord(c) < 32 for c in path) or "@" in path.split("?")[0]:
        return None
    return path


def target_url(target: Target, path: str) -> str | None:
    """The target's base URL (an administrator's) with the check's path; None if the result leaves that address."""
    base = urlsplit(target.base_url or "")
    if base.scheme not in ("http", "https") or not base.netloc:
        return None
    url = (target.base_url or "").rstrip("/") + path
    parts = urlsplit(url)
    return url if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) else None


def _http_check(ctx: RunContext, target: Target, check: dict) -> dict:
    method = check.get("method", "GET").upper()
    path = check_path(check.get("url"))
    url = target_url(target, path) if path is not None else None
    name = check.get("name") or f"{method} {url or check.get('url')}"
    data = json.dumps(check["body"]).encode() if "body" in check else None
    if url is None:
        return {
            "name": name,
            "ok": False,
            "detail": f"{check.get('url')!r} is not a path on target {target.name}'s base URL ({target.base_url or 'none set'})",
            "ms": None,
        }
    request = urllib.request.Request(url, method=method, data=data, headers={"User-Agent": "Warroom smoke check"})  # noqa: S310
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=check.get("timeout_s", 10)) as response:  # noqa: S310 (http(s) validated)
            status, body = response.status, response.read(1 << 20).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(1 << 20).decode(errors="replace")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"name": name, "ok": False, "detail": f"unreachable: {reason}", "ms": None}
    elapsed = round((time.monotonic() - started) * 1000, 1)
    problems = []
    expected = check.get("expect_status", 200)
    if status != expected:
        problems.append(f"status {status}, expected {expected}")
    if check.get("expect_text") and check["expect_text"] not in body:
        problems.append(f"body lacks {check['expect_text']!r}")
    if "json_path" in check:
        try:
            value = json.loads(body)
            for key in str(check["json_path"]).split("."):
                value = value[int(key)] if isinstance(value, list) else value[key]
        except (ValueError, KeyError, IndexError, TypeError):
            problems.append(f"no value at {check['json_path']}")
        else:
            if "expect_value" in check and value != check["expect_value"]:
                problems.append(f"{check['json_path']} = {value!r}, expected {check['expect_value']!r}")
    if check.get("max_ms") and elapsed > check["max_ms"]:
        problems.append(f"{elapsed} ms, budget {check['max_ms']} ms")
    return {"name": name, "ok": not problems, "detail": "; ".join(problems) or f"{status} in {elapsed} ms", "ms": elapsed}


SQL_CHECK_TIMEOUT_MS = 30_000


def _sql_check(ctx: RunContext, target: Target, check: dict) -> dict:
    name = check.get("name") or check["query"][:60]
    try:
        with connect(ctx, _require_database(target)) as conn, conn.transaction():
            # A check reads: one statement (a prepared statement cannot hold two), in a
            # read-only transaction, bounded in time.
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {SQL_CHECK_TIMEOUT_MS}")
            row = conn.execute(check["query"], prepare=True).fetchone()
    except ActionFailed as exc:
        return {"name": name, "ok": False, "detail": str(exc)}
    except psycopg.Error as exc:
        return {"name": name, "ok": False, "detail": mask(str(exc).strip().splitlines()[0], ctx.secrets)}
    value = row[0] if row else None
    if "expect" in check and str(value) != str(check["expect"]):
        return {"name": name, "ok": False, "detail": f"got {value!r}, expected {check['expect']!r}"}
    if "expect_min" in check and (value is None or float(value) < float(check["expect_min"])):
        return {"name": name, "ok": False, "detail": f"got {value!r}, expected at least {check['expect_min']}"}
    return {"name": name, "ok": True, "detail": f"= {value!r}"}


# --- maintenance and commands --------------------------------------------------------------------


def maintenance(ctx: RunContext, target: Target, config: dict, *, on: bool) -> dict:
    if target.maintenance_file:
        path = Path(target.maintenance_file)
        if on:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"maintenance since {datetime.now(UTC).isoformat()} (Warroom run {ctx.run.pk})\n")
        else:
            path.unlink(missing_ok=True)
        ctx.log(f"[warroom] maintenance {'on' if on else 'off'}: {'created' if on else 'removed'} {path}")
        return {"mode": "file", "path": str(path), "on": on}
    if target.maintenance_url:
        request = urllib.request.Request(  # noqa: S310 (a URLField: http or https)
            target.maintenance_url,
            method="POST",
            data=json.dumps({"maintenance": on}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (URLField validated)
                status = response.status
        except (urllib.error.URLError, OSError) as exc:
            raise ActionFailed(f"Maintenance endpoint unreachable: {getattr(exc, 'reason', exc)}") from None
        ctx.log(f"[warroom] maintenance {'on' if on else 'off'}: POST {target.maintenance_url} → {status}")
        return {"mode": "http", "status": status, "on": on}
    raise ActionFailed(f"Target {target.name} has no maintenance file or URL.")


def command(ctx: RunContext, target: Target, config: dict) -> dict:
    name = config.get("command", "")
    argv = target.commands.get(name)
    if not argv:
        raise ActionFailed(f"Target {target.name} defines no command {name!r}.")
    code = ctx.run_process(list(argv), timeout=config.get("timeout_s", 900))
    ctx.run.exit_code = code
    if code != 0:
        raise ActionFailed(f"{name} exited with code {code}")
    return {"command": name, "exit_code": code}


def perform(ctx: RunContext, target: Target, action: str, config: dict) -> dict:
    if action == StepAction.BACKUP:
        return backup(ctx, target, config)
    if action == StepAction.MIGRATE:
        return migrate(ctx, target, config)
    if action == StepAction.SMOKE:
        return smoke(ctx, target, config)
    if action in (StepAction.MAINTENANCE_ON, StepAction.MAINTENANCE_OFF):
        return maintenance(ctx, target, config, on=action == StepAction.MAINTENANCE_ON)
    if action == StepAction.COMMAND:
        return command(ctx, target, config)
    raise ActionFailed(f"Unknown action {action!r}")


# Which of a step's verification lines a successful action proves (matched on their text).
PROOFS = {
    StepAction.BACKUP: [r"backup.*(exist|size|created|taken)", r"(integrity|verif).*backup|backup.*(integrity|verif)"],
    StepAction.MIGRATE: [r"migration.*(success|applied|complete|ran)", r"(apply|run).*migration"],
    StepAction.SMOKE: [r"smoke", r"health ?check"],
    StepAction.MAINTENANCE_ON: [r"maintenance.*(on|enabled|active)", r"enable.*maintenance"],
    StepAction.MAINTENANCE_OFF: [r"maintenance.*(off|disabled)", r"disable.*maintenance"],
}
