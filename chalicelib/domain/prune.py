"""Which task-definition revisions may go: keep the newest N and everything a rollback needs."""
from __future__ import annotations


def revision_of(arn: str) -> int:
    """``arn:…:task-definition/app:42`` → 42."""
    return int(arn.rsplit(":", 1)[1])


def family_revision(arn: str) -> str:
    """``arn:…:task-definition/app:42`` (or ``app:42``) → ``app:42``: compare revisions by this."""
    return arn.rsplit("/", 1)[-1]


def owed(task_definition_arn: str | None, tags: list[str], only_tags) -> str | None:
    """What a SUCCEEDED deployment leaves to prune: its family's ARN without the revision
    (``arn:…:task-definition/app``), or None (nothing registered, or no tag matches only_tags)."""
    if not task_definition_arn:
        return None
    if only_tags is not None and not any(only_tags.fullmatch(t) for t in tags):
        return None
    return task_definition_arn.rsplit(":", 1)[0]


def revisions_to_prune(active_arns: list[str], keep: int, protected: set[str]) -> list[str]:
    """Return the ARNs to deregister, oldest first.

    ``active_arns``: every ACTIVE revision of one family. The newest ``keep`` stay, and so does every
    ARN in ``protected`` (the revision in service, the last SUCCEEDED one and its predecessor, and
    whatever an in-flight deployment or rollback needs), whatever its age.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    newest_first = sorted(set(active_arns), key=revision_of, reverse=True)
    keep_too = {family_revision(arn) for arn in protected}
    doomed = [arn for arn in newest_first[keep:] if family_revision(arn) not in keep_too]
    return sorted(doomed, key=revision_of)
