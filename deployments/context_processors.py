"""What the signed-in person may do outside any one deployment, for navigation and buttons.

Pages hide what a person may not do; the views and services still refuse it (permissions.py).
"""

from django.utils.functional import SimpleLazyObject

from checklists.services import can_edit_runbooks, can_read_runbooks
from deployments.permissions import may_create_deployments


def rights(request):
    user = getattr(request, "user", None)
    return {
        "rights": SimpleLazyObject(
            lambda: {
                "create_deployments": may_create_deployments(user),
                "read_runbooks": can_read_runbooks(user),
                "edit_runbooks": can_edit_runbooks(user),
            }
        )
    }
