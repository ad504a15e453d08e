"""Log lines reach every war-room screen in batches, none lost, in order."""

import asyncio
import re
import sys

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.test import Client

from checklists.models import StepAction
from rollouts import runs
from rollouts.models import RunState, TaskLogLine
from tests.rollouts.helpers import step_with_action, wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)

LINES = 3000
EMIT = f"import sys\nfor n in range({LINES}):\n    sys.stdout.write(f'line {{n}}\\n')\n"


def _session(user):
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def test_every_line_reaches_the_screen_in_order(crew, asgi_server, celery_worker, make_target):
    deployment, people = crew
    target = await sync_to_async(make_target)(commands={"emit": [sys.executable, "-c", EMIT]})
    await sync_to_async(runs.bind_target)(deployment, people["lead"], target)
    step = await sync_to_async(step_with_action)(deployment, StepAction.COMMAND, {"command": "emit"})
    session = await sync_to_async(_session)(people["po"])
    url = asgi_server.replace("http://", "ws://") + f"/ws/deployments/{deployment.pk}/"
    async with websockets.connect(
        url, additional_headers={"Cookie": f"sessionid={session}", "Origin": asgi_server}, max_size=None
    ) as ws:
        run = await sync_to_async(runs.start_run)(step.pk, people["devops"])
        received, batches = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(received) < LINES and loop.time() < deadline:
            message = await asyncio.wait_for(ws.recv(), timeout=30)
            if f"beforeend:#run-{run.pk}-log" in message:
                batches += 1
                received += [int(n) for n in re.findall(r"(?:^|>)line (\d+)$", message, re.M)]
    assert received == list(range(LINES))
    assert batches < LINES / 10  # batched, not one push per line
    run = await sync_to_async(wait_for_run)(run.pk)
    assert run.state == RunState.SUCCEEDED
    assert await sync_to_async(TaskLogLine.objects.filter(run=run).count)() == LINES + 1  # plus the "$ argv" line
    tail = run.log_tail.splitlines()
    assert tail[-1] == f"line {LINES - 1}" and len(tail) == 200
