"""The signed PDF made by a real Celery worker, requested and fetched through the pages."""

import time

import pytest
from django.test import Client

from reports.models import JobState, ReportJob
from reports.verification import Verdict, verify_report

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_pdf_is_made_on_the_worker_and_downloadable(finished_crew, celery_worker):
    deployment, people = finished_crew
    client = Client()
    client.force_login(people["qa"])
    response = client.post(f"/reports/{deployment.pk}/pdf/", {"paper": "a4"}, HTTP_HX_REQUEST="true")
    assert "hx-trigger" in response.content.decode()
    job = ReportJob.objects.get(deployment=deployment)

    # What the page does: poll the status fragment until it stops asking to be polled.
    seen_states = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job.refresh_from_db()
        seen_states.add(job.state)
        fragment = client.get(f"/reports/{deployment.pk}/jobs/{job.pk}/").content.decode()
        if "hx-trigger" not in fragment:
            break
        time.sleep(0.2)
    job.refresh_from_db()
    assert job.state == JobState.DONE, (job.state, job.error)
    assert seen_states <= {JobState.QUEUED, JobState.RUNNING, JobState.DONE}
    assert "Download PDF" in fragment and f"{job.pages} pages" in fragment
    assert (job.progress, job.stage) == (100, "Ready") and job.started_at <= job.finished_at

    download = client.get(f"/reports/{deployment.pk}/jobs/{job.pk}/download/")
    pdf = b"".join(download.streaming_content)
    assert verify_report(pdf).verdict is Verdict.AUTHENTIC
    job.file.delete(save=False)
