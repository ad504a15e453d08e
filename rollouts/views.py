from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, StreamingHttpResponse
from django.views.decorators.http import require_GET, require_POST

from deployments.models import Step
from deployments.permissions import PermissionDenied, get_visible_deployment_or_404
from deployments.services import InvalidChange
from deployments.views import done_response, toast_response
from rollouts import runs
from rollouts.models import TaskLogLine, TaskRun


def _act(call):
    try:
        call()
    except InvalidChange as exc:
        return toast_response(str(exc), 400)
    except PermissionDenied as exc:
        return toast_response(str(exc), 403)
    except ObjectDoesNotExist:
        raise Http404("Not found") from None
    return done_response()


@login_required
@require_POST
def start(request, pk, step_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    if not Step.objects.filter(deployment=deployment, pk=step_pk).exists():
        raise Http404("No such step")
    target = request.POST.get("target")
    if target is not None and not target.isdigit():
        return toast_response("Malformed target id.", 400)
    return _act(lambda: runs.start_run(step_pk, request.user, target_id=int(target) if target else None))


@login_required
@require_POST
def cancel(request, pk, run_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    if not TaskRun.objects.filter(deployment=deployment, pk=run_pk).exists():
        raise Http404("No such run")
    return _act(lambda: runs.cancel_run(run_pk, request.user))


@login_required
@require_GET
def log_download(request, pk, run_pk):
    """The whole stored log (masked when written), streamed: it may be large."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    run = TaskRun.objects.filter(deployment=deployment, pk=run_pk).first()
    if run is None:
        raise Http404("No such run")
    lines = TaskLogLine.objects.filter(run=run).order_by("seq").values_list("text", flat=True).iterator(chunk_size=5000)
    response = StreamingHttpResponse((line + "\n" for line in lines), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-{run.action}.log"'
    return response
