"""Report jobs on the Celery worker: take an id, claim the job, call the domain function."""

from celery import shared_task

from reports import services
from reports.models import ReportJob


@shared_task(name="reports.render_report", ignore_result=True)
def render_report(*, job_id: int) -> None:
    if not ReportJob.objects.filter(pk=job_id).exists():
        return  # deleted while queued
    if not services.claim_report_job(job_id):
        return  # another delivery of this task has it (or had it)
    # A failure is recorded on the job (the page shows it); retrying would only fail again.
    services.run_report_job(job_id)
