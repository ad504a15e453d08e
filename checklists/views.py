from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from checklists.models import Runbook


@login_required
@require_GET
def runbook_list(request):
    runbooks = Runbook.objects.prefetch_related("versions")
    return render(request, "checklists/list.html", {"runbooks": runbooks})
