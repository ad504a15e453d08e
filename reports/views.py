"""The report page (exports, report jobs, sign-offs) and the verifier.

Every deployment-scoped view starts with deployments.permissions: participants see
it, everyone else gets the same 404 as for a deployment that does not exist.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments.permissions import PermissionDenied, access_for, get_visible_deployment_or_404
from deployments.services import InvalidChange
from reports import services, signoffs
from reports.exports import export_report
from reports.formatting import reader_zone
from reports.forms import ReportRequestForm, SignOffForm, VerifyForm
from reports.models import JobState, ReportJob, SignOff
from reports.verification import verify_report
from warroom.auth import PasswordLockedOut, confirm_password

RECENT_JOBS = 10


def _page_context(request, deployment, *, signoff_form=None, report_form=None) -> dict:
    access = access_for(request.user, deployment)
    requested = signoffs.requested_roles(deployment)
    given = {s.role_id: s for s in SignOff.objects.filter(deployment=deployment).select_related("role")}
    can_sign = [role.name for role in requested if role.pk in access.role_ids and role.pk not in given]
    if signoff_form is None and can_sign and deployment.is_finished:
        signoff_form = SignOffForm(role_names=can_sign)
    return {
        "d": deployment,
        "access": access,
        "signoff_rows": [(role, given.get(role.pk)) for role in requested],
        "signoff_form": signoff_form if deployment.is_finished else None,
        "report_form": report_form
        or ReportRequestForm(initial={"paper": settings.REPORT_PAPER}, deployment_zone=deployment.timezone_name),
        "jobs": ReportJob.objects.filter(deployment=deployment).select_related("requested_by")[:RECENT_JOBS],
        **_versions(deployment),
    }


def _versions(deployment) -> dict:
    """The versions of the final report, newest first (the first file made of each), and how
    many events the log has that the latest version does not cover."""
    done = ReportJob.objects.filter(deployment=deployment, state=JobState.DONE, version__isnull=False)
    first_of_each = {}
    for job in done.select_related("requested_by").order_by("version", "finished_at", "id"):
        first_of_each.setdefault(job.version, job)
    versions = sorted(first_of_each.values(), key=lambda job: job.version, reverse=True)
    since = deployment.event_count - versions[0].event_count if versions and deployment.is_finished else 0
    return {"versions": versions, "events_since_latest_version": max(since, 0)}


@login_required
@require_GET
def report_page(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    return render(request, "reports/report.html", _page_context(request, deployment))


@login_required
@require_POST
def request_pdf(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    form = ReportRequestForm(request.POST, deployment_zone=deployment.timezone_name)
    if not form.is_valid():
        return render(request, "reports/report.html", _page_context(request, deployment, report_form=form), status=400)
    job, created = services.request_report(
        deployment.pk, request.user, paper=form.cleaned_data["paper"], zone=form.cleaned_data["zone"]
    )
    if request.htmx:
        response = render(request, "reports/report.html#job", {"d": deployment, "job": job})
        if created:
            response.write('<li id="no-jobs" hx-swap-oob="delete"></li>')
        else:  # already on the page: refresh it in place instead of listing it twice
            response["HX-Retarget"] = f"#job-{job.pk}"
            response["HX-Reswap"] = "outerHTML"
        return response
    return redirect(reverse("reports:deployment", args=[deployment.pk]) + "#jobs")


@login_required
@require_GET
def job_status(request, pk, job_pk):
    """The fragment the page polls while a job is queued or running."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    job = get_object_or_404(ReportJob.objects.select_related("requested_by"), pk=job_pk, deployment=deployment)
    return render(request, "reports/report.html#job", {"d": deployment, "job": job})


@login_required
@require_GET
def job_download(request, pk, job_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    job = get_object_or_404(ReportJob, pk=job_pk, deployment=deployment, state=JobState.DONE)
    if not job.file or not job.file.storage.exists(job.file.name):
        raise Http404("The report file is no longer there; make a new one.")
    filename = os.path.basename(job.file.name).split("-", 1)[-1]
    response = FileResponse(job.file.open("rb"), as_attachment=True, filename=filename, content_type="application/pdf")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def export(request, pk, fmt):
    """Markdown and JSON are quick to make: made on request, from the same record as the PDF."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    made = export_report(deployment.pk, fmt, zone=reader_zone(request.GET.get("tz"), deployment.timezone_name))
    response = HttpResponse(made.content, content_type=made.content_type)
    response["Content-Disposition"] = f'attachment; filename="{made.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _password_check(request):
    """The sign-off password goes through the login lockout: same account, same address, same count."""

    def check(user, password):
        try:
            return confirm_password(request, user, password)
        except PasswordLockedOut as exc:
            raise services.SignOffLockedOut(f"{exc} The sign-off was not recorded.") from None

    return check


@login_required
@require_POST
def sign_off(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    role_names = [role.name for role in signoffs.requested_roles(deployment)]
    form = SignOffForm(request.POST, role_names=role_names)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.sign_off(
                deployment.pk,
                request.user,
                role_name=data["role"],
                outcome=data["outcome"],
                statement=data["statement"],
                password=data["password"],
                password_check=_password_check(request),
            )
        except services.SignOffLockedOut as exc:
            form.add_error("password", str(exc))
            status = 429
        except services.WrongPassword as exc:
            form.add_error("password", str(exc))
        except InvalidChange as exc:
            form.add_error(None, str(exc))
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
            status = 403
        else:
            messages.success(request, f"Your sign-off as {data['role']} is recorded.")
            return redirect(reverse("reports:deployment", args=[deployment.pk]) + "#sign-offs")
    return render(request, "reports/report.html", _page_context(request, deployment, signoff_form=form), status=status)


@login_required
@require_http_methods(["GET", "POST"])
def verify(request):
    """Anyone signed in may check a report they were given; no deployment access is needed."""
    form = VerifyForm(request.POST, request.FILES) if request.method == "POST" else VerifyForm()
    result = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["report"]
        if upload.size > settings.REPORT_VERIFY_MAX_BYTES:
            form.add_error(
                "report", f"That file is larger than {settings.REPORT_VERIFY_MAX_BYTES // (1024 * 1024)} MB; no report is."
            )
        else:
            result = verify_report(b"".join(upload.chunks()), viewer=request.user)
    status = 400 if form.errors else 200
    return render(request, "reports/verify.html", {"form": form, "result": result}, status=status)
