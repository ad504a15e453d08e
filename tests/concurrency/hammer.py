"""One hammering process for the concurrency test: ``python -m tests.concurrency.hammer SPEC``.

SPEC is JSON: the deployment, who acts, what they do and how often. Prints one JSON line:
how many changes went through, how many were refused in words (a rule said no), how many
died on a deadlock, and any other error.
"""

import json
import os
import sys


def main(spec: dict) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warroom.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied
    from django.db import OperationalError

    from approvals import services as approvals
    from deployments import services
    from deployments.models import DeploymentState

    user = get_user_model().objects.get(username=spec["user"])
    done = refused = deadlocks = 0
    errors: list[str] = []
    for n in range(spec["ops"]):
        try:
            kind = spec["kind"]
            if kind == "ticker":  # ticks and unticks its own boxes: every call is a change
                item_id = spec["items"][n % len(spec["items"])]
                services.update_item(item_id, user, revision=None, checked=(n // len(spec["items"])) % 2 == 0)
            elif kind == "writer":  # writes a new value into its own field each time
                services.update_item(spec["items"][0], user, revision=None, value=f"{spec['user']}-{n}")
            elif kind == "voter":  # changes its vote back and forth
                if n % 2:
                    approvals.cast_vote(spec["gate"], user, "no_go", reason=f"hold {n}")
                else:
                    approvals.cast_vote(spec["gate"], user, "go")
            elif kind == "lead":  # pauses and resumes, with reasons
                state = DeploymentState.PAUSED if n % 2 == 0 else DeploymentState.IN_PROGRESS
                services.change_state(spec["deployment"], user, state, reason=f"hammer {n}")
            done += 1
        except OperationalError as exc:
            if "deadlock" in str(exc):
                deadlocks += 1
            else:
                errors.append(str(exc)[:200])
        except (services.InvalidChange, PermissionDenied) as exc:
            refused += 1
            if len(errors) < 5 and spec["kind"] != "lead":
                errors.append(f"refused: {exc}"[:200])
        except Exception as exc:  # reported: the test fails on it
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    return {
        "user": spec["user"],
        "kind": spec["kind"],
        "done": done,
        "refused": refused,
        "deadlocks": deadlocks,
        "errors": errors,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
