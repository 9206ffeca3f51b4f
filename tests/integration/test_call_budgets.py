"""The budgets that are counts, not times: AWS calls for one deployment and for pruning 5,000
revisions (bench/ measures them; here they must hold, so a change that adds calls is noticed)."""
from __future__ import annotations

import contextlib
import io


def _run(module) -> list:
    with contextlib.redirect_stdout(io.StringIO()):
        return module.run()


def test_one_deployment_stays_within_its_call_budget():
    """Push → SUCCEEDED makes at most 12 ECS/ECR/Secrets Manager calls, even in fresh containers."""
    from bench import api_calls

    results = {r.name: r for r in _run(api_calls)}
    assert results["api_calls"].ratio <= 1.0, results["api_calls"].line()


def test_pruning_five_thousand_revisions_stays_within_its_call_budget():
    """⌈N/100⌉ list calls plus one per revision removed, across invocations, nothing lost."""
    from bench import prune

    results = {r.name: r for r in _run(prune)}
    assert results["prune"].ratio <= 1.0, results["prune"].line()
