"""report: the signed PDF of a big deployment — record, render and sign times, peak memory.

500 checklist items, 2,000 events and 20 finished task runs, built through the deployment services (live pushes
switched off while building: this measures the report, not the war room). The report is
made in a child process, so ``peak_mb`` (its maximum resident set) is the report's alone
and not the builder's; ``baseline_mb`` is that process after importing Django, WeasyPrint
and pyHanko, before any work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager

from bench.support import BASE_DIR, child_env, make_crew

ITEMS = 500
EVENTS = 2000
TASK_RUNS = 20


@contextmanager
def _without_live_pushes():
    from deployments import live

    original = live.publish_on_commit
    live.publish_on_commit = lambda deployment_id, render_fragments: None
    try:
        yield
    finally:
        live.publish_on_commit = original


def _build() -> int:
    from deployments import services
    from deployments.models import Deployment, DeploymentState, Item

    deployment, lead, (qa,) = make_crew(1, items=ITEMS, label=f"report-{int(time.time())}")
    with _without_live_pushes():
        services.change_state(deployment.pk, lead, DeploymentState.SCHEDULED)
        services.change_state(deployment.pk, lead, DeploymentState.IN_PROGRESS)
        items = list(Item.objects.filter(deployment=deployment, is_group=False).order_by("id"))
        for n, item in enumerate(items):
            note = f"Evidence: run log {n}, screenshot in JIRA-{1000 + n}" if n % 5 == 0 else None
            services.update_item(item.pk, qa, revision=item.revision, checked=True, note=note)
        # The rest of the night: notes added and corrected until the log holds EVENTS events.
        round_no = 0
        while Deployment.objects.get(pk=deployment.pk).event_count < EVENTS - 1:
            item = items[round_no % len(items)]
            item.refresh_from_db()
            services.update_item(item.pk, qa, revision=item.revision, checked=True, note=f"Checked again (round {round_no})")
            round_no += 1
        _add_task_runs(deployment, lead)
        services.change_state(deployment.pk, lead, DeploymentState.COMPLETED)
    return deployment.pk


def _add_task_runs(deployment, lead) -> None:
    """Twenty finished runs with artifacts and 200-line log tails, as a night of backups and smoke checks leaves."""
    from datetime import timedelta

    from django.utils import timezone

    from deployments.models import Step
    from rollouts.models import RunState, Target, TaskRun

    target, _ = Target.objects.get_or_create(name="bench-report-target")
    steps = list(Step.objects.filter(deployment=deployment).order_by("id")[:TASK_RUNS])
    now = timezone.now()
    for n in range(TASK_RUNS):
        step = steps[n % len(steps)]
        backup = n % 2 == 0
        TaskRun.objects.create(
            deployment=deployment,
            step=step,
            target=target,
            action="backup" if backup else "smoke",
            state=RunState.SUCCEEDED,
            started_by=lead,
            started_at=now - timedelta(minutes=60 - n),
            finished_at=now - timedelta(minutes=59 - n),
            exit_code=0,
            attempt=1,
            log_line_count=200,
            log_tail="\n".join(f"pg_dump: dumping contents of table public.t{n}_{i}" for i in range(200)),
            result={"path": f"/backups/bench/run{n}.dump", "size_bytes": 1_000_000 + n, "sha256": f"{n:064x}", "verified": True}
            if backup
            else {"checks": [{"name": "health", "ok": True, "detail": "200 in 12 ms"}], "passed": 1, "failed": 0},
        )


def _measure(deployment_id: int) -> dict:
    """Runs in the child process."""
    import resource

    import psutil

    from deployments.models import Deployment, Item
    from reports import rendering, signing
    from reports.record import build_record
    from reports.verification import verify_report
    from rollouts.models import TaskRun

    signing.signing_identity()  # loading the key is start-up, not signing
    baseline_mb = psutil.Process().memory_info().rss / 2**20
    started = time.perf_counter()
    record = build_record(deployment_id)
    record_s = time.perf_counter() - started
    started = time.perf_counter()
    pdf = rendering.render_pdf(record, paper="a4")
    render_s = time.perf_counter() - started
    started = time.perf_counter()
    signed = signing.sign_pdf(pdf.content)
    sign_s = time.perf_counter() - started
    started = time.perf_counter()
    verdict = verify_report(signed).verdict.value
    verify_s = time.perf_counter() - started
    deployment = Deployment.objects.get(pk=deployment_id)
    return {
        "items": Item.objects.filter(deployment_id=deployment_id, is_group=False).count(),
        "events": deployment.event_count,
        "task_runs": TaskRun.objects.filter(deployment_id=deployment_id).count(),
        "pages": pdf.pages,
        "pdf_kb": round(len(signed) / 1024),
        "record_s": round(record_s, 2),
        "render_s": round(render_s, 2),
        "sign_s": round(sign_s, 3),
        "verify_s": round(verify_s, 2),
        "verdict": verdict,
        "baseline_mb": round(baseline_mb, 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # Linux: KiB
    }


def run():
    deployment_id = _build()
    child = subprocess.run(
        [sys.executable, "-m", "bench.cases.report", str(deployment_id)],
        cwd=BASE_DIR,
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"report measurement failed:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    yield result


if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(_measure(int(sys.argv[1]))))
