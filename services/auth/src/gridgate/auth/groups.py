"""Which DIRAC groups a user may have, from their IAM groups."""

from __future__ import annotations

from dataclasses import dataclass

from gridgate.core.errors import ProblemError
from gridgate.iam.identity import Identity


class GroupNotHeldError(ProblemError):
    """The token's groups do not include the group the job asks for, or it maps to no DIRAC group
    of the user."""

    slug, title, status = "group-not-held", "Group not held", 403


@dataclass(frozen=True)
class GroupChoice:
    vo: str
    dirac_group: str


class GroupMap:
    """Per VO, IAM group -> DIRAC group. Groups outside the map are never served (no admin or
    production groups unless an operator maps them on purpose)."""

    def __init__(self, mapping: dict[str, dict[str, str]]) -> None:
        self.mapping = mapping

    def allowed(self, identity: Identity) -> list[GroupChoice]:
        """Every DIRAC group the identity may act as, in the order of its IAM groups."""
        found: list[GroupChoice] = []
        for iam_group in identity.groups:
            vo = iam_group.split("/", 1)[0]
            dirac_group = self.mapping.get(vo, {}).get(iam_group)
            if dirac_group and all(c.dirac_group != dirac_group for c in found):
                found.append(GroupChoice(vo, dirac_group))
        return found

    def choose(
        self, identity: Identity, requested: str | None, vo: str | None = None
    ) -> GroupChoice:
        """The requested DIRAC group if held, else the first one of the VO; 403 otherwise."""
        allowed = [c for c in self.allowed(identity) if vo is None or c.vo == vo]
        if requested is None:
            if allowed:
                return allowed[0]
            raise GroupNotHeldError(
                f"None of your groups maps to a DIRAC group{f' of VO {vo!r}' if vo else ''}."
            )
        for choice in allowed:
            if choice.dirac_group == requested:
                return choice
        held = ", ".join(c.dirac_group for c in allowed) or "none"
        raise GroupNotHeldError(
            f"You do not hold the DIRAC group {requested!r}; yours: {held}.",
            errors=[{"field": "group", "message": f"not held: {requested}"}],
        )
