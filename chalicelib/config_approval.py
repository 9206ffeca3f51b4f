"""Approval settings that Slipway could not enforce fail at load time (issue 8, H2/L2/L3).

    [service.approval]
    approvers = ["slack:U0123", "github:octocat"]   # or ["*"]: anyone, said out loud
    prevent_self_review = true                       # needs every slack: approver in [identities]

    [identities]
    "github:octocat" = ["slack:U0123"]               # one person; an alias belongs to one person

Refused, naming the file, the service and the key:
- ``required = true`` (the default) with no ``approvers``: "anyone" must be written ``["*"]``;
- ``"*"`` next to named approvers (it would silently mean anyone);
- ``prevent_self_review`` with a ``slack:`` approver no ``[identities]`` entry ties to a GitHub login
  (GitHub names authors by login: Slipway could not tell that approver wrote the change), or
  without ``[service.notify] github_repository`` (nowhere to ask who wrote it);
- an alias listed under two people, or one person's two identities both keys (quorum bypass);
- a ``quorum`` larger than the number of distinct people among the approvers (never met).

Called by ``chalicelib.config.load``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from chalicelib.errors import ConfigError

ANYONE = "*"


def check_identities(path: Path, table: dict[str, Iterable[str]]) -> None:
    """One identity, one person: an alias under two keys (or a key that is also another's alias)
    would let one person count as two."""
    owner: dict[str, str] = {}
    for main, aliases in table.items():
        for identity in (main, *aliases):
            if identity in owner and owner[identity] != main:
                raise ConfigError(f"{path}: [identities] '{identity}' is listed under both "
                                  f"'{owner[identity]}' and '{main}': one identity belongs to "
                                  "one person")
            owner[identity] = main


def check_approvals(path: Path, services, same_person) -> None:
    """Refuse approval settings that cannot be enforced (see the module docstring)."""
    for svc in services:
        policy, label = svc.approval, f"{path}: service {svc.name!r}: [service.approval]"
        approvers = tuple(policy.approvers)
        if ANYONE in approvers and len(approvers) > 1:
            raise ConfigError(f"{label}: key 'approvers': \"*\" means anyone; list it alone")
        if policy.required and not approvers:
            raise ConfigError(f"{label}: required = true but key 'approvers' is empty: list "
                              "who may approve, write approvers = [\"*\"] for anyone, or set "
                              "required = false")
        if policy.prevent_self_review and not svc.notify.github_repository:
            raise ConfigError(f"{label}: prevent_self_review needs [service.notify] "
                              "github_repository (where Slipway asks who wrote the commits)")
        if policy.prevent_self_review:
            unmapped = sorted(a for a in approvers if a.startswith("slack:") and
                              not any(i.startswith("github:") for i in same_person(a)))
            if unmapped:
                raise ConfigError(f"{label}: prevent_self_review needs to know who {unmapped} "
                                  "are on GitHub: add them to [identities] "
                                  "(\"github:login\" = [\"slack:U…\"])")
        people = {same_person(a) for a in approvers if a != ANYONE}
        if approvers and ANYONE not in approvers and policy.quorum > len(people):
            raise ConfigError(f"{label}: key 'quorum' ({policy.quorum}) exceeds the "
                              f"{len(people)} distinct people among the approvers")
