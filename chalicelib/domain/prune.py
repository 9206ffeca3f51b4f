"""Which task-definition revisions may go: keep the newest N and everything a rollback needs."""
from __future__ import annotations


def revision_of(arn: str) -> int:
    """``arn:…:task-definition/app:42`` → 42."""
    return int(arn.rsplit(":", 1)[1])


def family_revision(arn: str) -> str:
    """``arn:…:task-definition/app:42`` (or ``app:42``) → ``app:42``: compare revisions by this."""
    return arn.rsplit("/", 1)[-1]


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
