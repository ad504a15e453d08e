"""A deterministic, realistic runbook of any size: what the import benchmark and the round-trip tests feed the parser."""

_SYNTHETIC_ROLES = ("DevOps Engineer", "QA Lead", "Product Owner", "Database Administrator", "Lead Developer")


_SYNTHETIC_VERBS = ("Verify", "Deploy", "Back up", "Migrate", "Check", "Restart", "Monitor", "Announce", "Review", "Tag")


_SYNTHETIC_NOUNS = ("database", "API gateway", "payment service", "CDN cache", "worker pool", "feature flags", "DNS records",
                    "TLS certificates", "dashboards", "release notes")  # fmt: skip


def make_synthetic_runbook(size_bytes: int) -> str:
    """A realistic runbook of at least ``size_bytes`` UTF-8 bytes (overshooting by under one step).

    Deterministic. Mixes what real runbooks hold: a timeline table, numbered steps
    with roles and estimates, nested and numbered checkboxes, code, fields, choices,
    gates, a checklist table, prose and emoji. Used to benchmark large imports.
    """
    parts = [
        "# Synthetic Production Deployment 🚀\n\nGenerated runbook for load testing the importer.\n\n"
        "## Deployment Timeline\n\n**Time:** 10:00 AM UTC\n\n| Time | Activity | Duration | Responsible |\n"
        "|------|----------|----------|-------------|\n"
        "| T-1h | Create database backup | 30 min | DevOps Engineer |\n| T-0 | Begin deployment | - | All |\n"
        "| T+5 | Apply database migrations | 15 min | DevOps Engineer |\n| T+60 | Run smoke tests | 20 min | QA Lead |\n\n"
    ]
    size = len(parts[0].encode())
    phase = step = 0
    while size < size_bytes:
        if step % 8 == 0:
            phase += 1
            header = f"## Phase {phase}: Rollout wave {phase} (T+{phase * 30})\n\nPrepare wave {phase} carefully.\n\n"
            parts.append(header)
            size += len(header.encode())
        step += 1
        verb, noun = _SYNTHETIC_VERBS[step % 10], _SYNTHETIC_NOUNS[(step // 10) % 10]
        role = _SYNTHETIC_ROLES[step % 5]
        checks = "".join(
            f"- [{'x' if (step + n) % 7 == 0 else ' '}] **{phase}.{step}.{n}** {verb} {noun} shard {n}\n"
            f"  - [ ] Confirm `{noun.replace(' ', '_')}_{n}` metrics are green ✅\n"
            for n in range(1, 4)
        )
        block = (
            f"### Step {phase}.{step}: {verb} the {noun}\n\n**Responsible:** {role}\n\n**Time Estimate**: {5 + step % 10}-"
            f"{10 + step % 10} minutes\n\nThis step {verb.lower()}s the {noun} for wave {phase}. Ping #deployments if "
            "anything looks off — don’t improvise.\n\n"
            f"```bash\n# {verb} {noun}\n./ops.sh {verb.lower().replace(' ', '-')} --wave {phase} --step {step}\n```\n\n"
            f"{checks}\n| Check | Done |\n|-------|------|\n| {noun} healthy | ☐ |\n| Alerts quiet | [ ] |\n\n"
            f"**Migration Status:** ☐ Success ☐ Failed\n\n**Time Completed:** _______\n\n"
        )
        if step % 5 == 0:
            block += f"**Decision:** ☐ GO ☐ NO-GO\n\n- {role}: ________ Date: ______\n\n"
        parts.append(block)
        size += len(block.encode())
    return "".join(parts)
