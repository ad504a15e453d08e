"""A runbook step defines its automated action in a fenced ``warroom`` block."""

import pytest

from checklists.importing import RunbookImportError, export_markdown, import_runbook
from checklists.models import RunbookVersion, TemplateStep

RUNBOOK = """# Release

## Deployment

### Step 1: Smoke tests
**Responsible:** QA Lead

```warroom
{"action": "smoke", "checks": [{"type": "http", "url": "{base_url}/health", "expect_status": 200}]}
```

- [ ] Smoke tests pass
"""


@pytest.mark.django_db
def test_action_block_sets_the_step_action_and_survives_export():
    version = import_runbook(RUNBOOK.encode(), filename="release.md").version
    step = TemplateStep.objects.get(phase__version=version)
    assert step.action == "smoke"
    assert step.action_config == {"checks": [{"type": "http", "url": "{base_url}/health", "expect_status": 200}]}
    again = import_runbook(export_markdown(version).encode(), filename="export.md").version
    assert TemplateStep.objects.get(phase__version=again).action_config == step.action_config


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("block", "message", "line"),
    [
        ("{not json", "not valid JSON", 8),  # the fence's first line
        ('{"checks": []}', 'needs an "action"', 8),
        # A setting that is wrong: the line that holds it.
        ('{"action": "reboot"}', "Unknown action 'reboot'", 9),
        ('{"action": "smoke", "checks": [{"type": "http", "url": "ftp://x"}]}', "names a path on its target", 9),
        ('{"action": "smoke", "checks": [{"type": "http", "url": "http://10.0.0.1/a"}]}', "the address itself is the target", 9),
    ],
)
def test_bad_action_block_fails_the_import_naming_the_line(block, message, line):
    text = RUNBOOK.replace(
        '{"action": "smoke", "checks": [{"type": "http", "url": "{base_url}/health", "expect_status": 200}]}', block
    )
    with pytest.raises(RunbookImportError) as caught:
        import_runbook(text.encode(), filename="bad.md")
    assert message in str(caught.value)
    assert caught.value.line == line
    assert not RunbookVersion.objects.exists()
