"""The report page, downloads, sign-off form and verifier, walked by every persona."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from deployments.events import verify_chain
from deployments.models import Event
from reports import services
from reports.exports import export_report
from reports.models import JobState, ReportJob, SignOff
from reports.verification import Verdict, verify_report
from tests.factories import PASSWORD, make_deployment
from tests.reports.test_verification import _with_title

PARTICIPANTS = ["lead", "po", "qa", "devops", "dba", "observer"]


def client_for(user, *, csrf=False):
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _made_job(deployment, user):
    """A finished job, made the way the worker makes it (claim, then run)."""
    job, _ = services.request_report(deployment.pk, user)
    assert services.claim_report_job(job.pk)
    return services.run_report_job(job.pk)


@pytest.mark.parametrize("persona", [*PARTICIPANTS, "outsider"])
@pytest.mark.parametrize("page", ["", "report.md", "report.json"])
def test_report_pages_are_for_participants_only(finished_crew, persona, page):
    deployment, people = finished_crew
    response = client_for(people[persona]).get(f"/reports/{deployment.pk}/{page}")
    assert response.status_code == (404 if persona == "outsider" else 200)


def test_anonymous_is_sent_to_login(finished_crew):
    deployment, _ = finished_crew
    for url in (f"/reports/{deployment.pk}/", f"/reports/{deployment.pk}/report.json", "/reports/verify/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_exports_download_as_files(finished_crew):
    deployment, people = finished_crew
    response = client_for(people["observer"]).get(f"/reports/{deployment.pk}/report.md")
    assert response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith('attachment; filename="expense-accounts-34-')
    assert b"[x] Verify component 1.1.1" in response.content


@pytest.mark.parametrize(("persona", "expected"), [("observer", 302), ("qa", 302), ("outsider", 404)])
def test_requesting_a_pdf(finished_crew, django_capture_on_commit_callbacks, persona, expected):
    deployment, people = finished_crew
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(people[persona]).post(f"/reports/{deployment.pk}/pdf/", {"paper": "letter"})
    assert response.status_code == expected
    jobs = ReportJob.objects.filter(deployment=deployment)
    if expected == 302:
        job = jobs.get()
        assert (job.state, job.paper, job.requested_by) == (JobState.QUEUED, "letter", people[persona])
        assert len(callbacks) == 1  # the worker is asked only after commit
    else:
        assert not jobs.exists() and not callbacks


def test_htmx_request_returns_a_polling_fragment_and_a_double_click_makes_one_job(finished_crew):
    deployment, people = finished_crew
    client = client_for(people["qa"])
    first = client.post(f"/reports/{deployment.pk}/pdf/", {"paper": "a4"}, HTTP_HX_REQUEST="true")
    job = ReportJob.objects.get()
    body = first.content.decode()
    assert f'id="job-{job.pk}"' in body and 'hx-trigger="every 1s"' in body and "Waiting for a worker" in body
    second = client.post(f"/reports/{deployment.pk}/pdf/", {"paper": "a4"}, HTTP_HX_REQUEST="true")
    assert ReportJob.objects.count() == 1
    assert second["HX-Retarget"] == f"#job-{job.pk}"


def test_bad_paper_is_a_400(finished_crew):
    deployment, people = finished_crew
    response = client_for(people["qa"]).post(f"/reports/{deployment.pk}/pdf/", {"paper": "a0"})
    assert response.status_code == 400 and not ReportJob.objects.exists()


def test_job_status_and_download(finished_crew, media):
    deployment, people = finished_crew
    job = _made_job(deployment, people["qa"])
    assert job.state == JobState.DONE and job.pages and job.final_hash
    status = client_for(people["observer"]).get(f"/reports/{deployment.pk}/jobs/{job.pk}/")
    assert "Download PDF" in status.content.decode() and "hx-trigger" not in status.content.decode()
    download = client_for(people["observer"]).get(f"/reports/{deployment.pk}/jobs/{job.pk}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    pdf = b"".join(download.streaming_content)
    assert verify_report(pdf).verdict is Verdict.AUTHENTIC
    for url in (f"/reports/{deployment.pk}/jobs/{job.pk}/", f"/reports/{deployment.pk}/jobs/{job.pk}/download/"):
        assert client_for(people["outsider"]).get(url).status_code == 404


def test_a_job_is_only_reachable_through_its_own_deployment(finished_crew, media):
    deployment, people = finished_crew
    job = _made_job(deployment, people["lead"])
    other = make_deployment(lead=people["lead"])  # the lead sees both deployments
    response = client_for(people["lead"]).get(f"/reports/{other.pk}/jobs/{job.pk}/download/")
    assert response.status_code == 404


def test_failed_job_says_why(finished_crew, media, monkeypatch):
    deployment, people = finished_crew
    job, _ = services.request_report(deployment.pk, people["qa"])
    services.claim_report_job(job.pk)
    monkeypatch.setattr("reports.exports.signing.sign_pdf", lambda data: (_ for _ in ()).throw(OSError("HSM unreachable")))
    with pytest.raises(OSError):
        services.run_report_job(job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "HSM unreachable" in job.error
    page = client_for(people["qa"]).get(f"/reports/{deployment.pk}/").content.decode()
    assert "Failed: OSError: HSM unreachable" in page


def test_a_job_is_claimed_once(finished_crew):
    deployment, people = finished_crew
    job, _ = services.request_report(deployment.pk, people["qa"])
    assert services.claim_report_job(job.pk) is True
    assert services.claim_report_job(job.pk) is False  # a redelivered task does nothing


# --- sign-off form -----------------------------------------------------------------------------

SIGN = {"role": "QA Lead", "outcome": "success", "statement": "Verified in production.", "password": PASSWORD}


def test_sign_off_form_is_offered_to_the_role_holder(finished_crew):
    deployment, people = finished_crew
    page = client_for(people["qa"]).get(f"/reports/{deployment.pk}/").content.decode()
    assert 'name="password"' in page and 'value="QA Lead"' in page
    assert 'name="password"' not in client_for(people["observer"]).get(f"/reports/{deployment.pk}/").content.decode()


def test_sign_off_through_the_page(finished_crew):
    deployment, people = finished_crew
    wrong = client_for(people["qa"]).post(f"/reports/{deployment.pk}/sign-off/", {**SIGN, "password": "nope"})
    assert wrong.status_code == 400 and "not correct" in wrong.content.decode()
    assert not SignOff.objects.exists()
    right = client_for(people["qa"]).post(f"/reports/{deployment.pk}/sign-off/", SIGN)
    assert right.status_code == 302 and right["Location"].endswith("#sign-offs")
    assert SignOff.objects.get().user == people["qa"]


@pytest.mark.parametrize(("persona", "expected"), [("devops", 403), ("observer", 403), ("outsider", 404)])
def test_sign_off_for_someone_elses_role(finished_crew, persona, expected):
    deployment, people = finished_crew
    response = client_for(people[persona]).post(f"/reports/{deployment.pk}/sign-off/", SIGN)
    assert response.status_code == expected
    assert not SignOff.objects.exists()


@pytest.mark.parametrize("url", ["sign-off/", "pdf/"])
def test_csrf_is_enforced(finished_crew, url):
    deployment, people = finished_crew
    response = client_for(people["qa"], csrf=True).post(f"/reports/{deployment.pk}/{url}", {**SIGN, "paper": "a4"})
    assert response.status_code == 403
    assert not SignOff.objects.exists() and not ReportJob.objects.exists()


# --- verifier ----------------------------------------------------------------------------------


def _upload(client, name, data):
    return client.post("/reports/verify/", {"report": SimpleUploadedFile(name, data, content_type="application/pdf")})


def test_anyone_signed_in_may_verify(finished_crew):
    deployment, people = finished_crew
    pdf = export_report(deployment.pk, "pdf").content
    client = client_for(people["outsider"])
    assert client.get("/reports/verify/").status_code == 200
    page = _upload(client, "report.pdf", pdf).content.decode()
    assert "Authentic" in page and "Signed by this Warroom?" in page


def test_verifier_page_names_what_changed_after_signing(finished_crew):
    deployment, people = finished_crew
    pdf = export_report(deployment.pk, "pdf").content
    client = client_for(people["qa"])
    page = _upload(client, "report.pdf", _with_title(pdf, "All fine")).content.decode()
    assert "Modified" in page and "changed the document&#x27;s Title" in page and "All fine" in page
    page = _upload(client, "report.pdf", pdf + b"\n" * 312).content.decode()
    assert "Modified" in page and "312 bytes after the signed end" in page


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"hello, not a pdf", "Not a PDF"),
        (b"%PDF-1.7\n1 0 obj\n<<", "Incomplete or damaged"),
    ],
)
def test_verifier_page_explains_bad_files(finished_crew, data, says):
    _, people = finished_crew
    response = _upload(client_for(people["qa"]), "x.pdf", data)
    assert response.status_code == 200 and says in response.content.decode()


def test_verifier_page_without_a_file(finished_crew):
    _, people = finished_crew
    response = client_for(people["qa"]).post("/reports/verify/", {})
    assert response.status_code == 400


def test_verifier_refuses_huge_uploads(finished_crew, settings):
    _, people = finished_crew
    settings.REPORT_VERIFY_MAX_BYTES = 1024
    response = _upload(client_for(people["qa"]), "big.pdf", b"%PDF-" + b"0" * 4096)
    assert response.status_code == 400 and "larger than" in response.content.decode()


def test_a_job_whose_worker_vanished_stops_polling_and_does_not_block_a_new_one(finished_crew):
    deployment, people = finished_crew
    job, _ = services.request_report(deployment.pk, people["qa"])
    services.claim_report_job(job.pk)
    ReportJob.objects.filter(pk=job.pk).update(created_at=job.created_at - timedelta(hours=1))
    fragment = client_for(people["qa"]).get(f"/reports/{deployment.pk}/jobs/{job.pk}/").content.decode()
    assert "worker may have stopped" in fragment and "hx-trigger" not in fragment
    again, created = services.request_report(deployment.pk, people["qa"])
    assert created and again.pk != job.pk


# --- password guessing at sign-off ----------------------------------------------------------


def _sign_from(user, deployment, password, address="10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    client.force_login(user)
    return client.post(f"/reports/{deployment.pk}/sign-off/", {**SIGN, "password": password})


def test_sign_off_password_guessing_is_locked_out_and_each_failure_is_an_event(finished_crew, settings):
    deployment, people = finished_crew
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _sign_from(people["qa"], deployment, "guess").status_code == 400
    assert _sign_from(people["qa"], deployment, "guess").status_code == 429  # the last allowed failure locks
    # Locked: the right password is refused too, from this address and from another one.
    for address in ("10.0.0.1", "10.9.9.9"):
        locked = _sign_from(people["qa"], deployment, PASSWORD, address=address)
        assert locked.status_code == 429 and "Too many wrong passwords" in locked.content.decode()
    assert not SignOff.objects.exists()
    # The same count is the login's: the account cannot log in either.
    login = Client(REMOTE_ADDR="10.9.9.9").post("/login/", {"username": "qa", "password": PASSWORD})
    assert login.status_code == 429
    failed = Event.objects.filter(deployment=deployment, action="signoff.failed").order_by("seq")
    assert [e.after["reason"] for e in failed] == ["wrong password"] * (limit - 1) + [
        "locked out after too many wrong passwords"
    ] * 3
    assert all(e.actor == people["qa"] and e.after["role"] == "QA Lead" for e in failed)
    assert not any("guess" in f"{e.summary}{e.after}" or PASSWORD in f"{e.summary}{e.after}" for e in failed)
    assert verify_chain(deployment.pk).ok


def test_sign_off_guessing_from_one_address_locks_that_address(finished_crew, settings):
    deployment, people = finished_crew
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_from(people["qa"], deployment, "guess", address="10.6.6.6")
    # The product owner at the same address is held too; from their own address they sign.
    po_sign = {**SIGN, "role": "Product Owner"}
    for address, status in (("10.6.6.6", 429), ("10.1.1.1", 302)):
        client = Client(REMOTE_ADDR=address)
        client.force_login(people["po"])
        assert client.post(f"/reports/{deployment.pk}/sign-off/", po_sign).status_code == status


def test_the_report_page_offers_the_time_zone_and_the_job_keeps_it(report_crew):
    deployment, people = report_crew
    client = client_for(people["po"])
    page = client.get(f"/reports/{deployment.pk}/").content.decode()
    assert 'name="zone"' in page and "Europe/Berlin (the deployment&#x27;s)" in page
    assert client.post(f"/reports/{deployment.pk}/pdf/", {"paper": "a4", "zone": "Asia/Tokyo"}).status_code in (200, 302)
    assert ReportJob.objects.get(deployment=deployment).zone == "Asia/Tokyo"
    assert client.post(f"/reports/{deployment.pk}/pdf/", {"paper": "a4", "zone": "Mars/Olympus"}).status_code == 400
    markdown = client.get(f"/reports/{deployment.pk}/report.md?tz=America/New_York").content.decode()
    assert "Times are shown in America/New_York." in markdown
