"""The facility catalogue and the capacity checks against a workflow's needs."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from gridgate.gateway.exceptions import FacilityCannotRunError, UnknownFacilityError
from gridgate.gateway.models.facility import Facility
from gridgate.workflows import Requirements

GB = 1024**3


def _host_memory_gb() -> float:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return round(pages / GB, 1)


def _host_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class FacilityCatalogue:
    """Facilities by id, loaded once from YAML."""

    def __init__(self, facilities: list[Facility]) -> None:
        self._by_id = {f.id: f for f in facilities}

    @classmethod
    def load(cls, path: Path | None = None) -> FacilityCatalogue:
        text = (
            path.read_text()
            if path is not None
            else (files("gridgate.gateway") / "data" / "facilities.yaml").read_text()
        )
        records: list[dict[str, Any]] = yaml.safe_load(text)["facilities"]
        facilities = []
        for record in records:
            if record.get("kind") == "local":
                record["cores"] = record.get("cores") or _host_cores()
                record["memory_gb"] = record.get("memory_gb") or _host_memory_gb()
            facilities.append(Facility.model_validate(record))
        return cls(facilities)

    def all(self) -> list[Facility]:
        return sorted(self._by_id.values(), key=lambda f: f.id)

    def get(self, facility_id: str) -> Facility:
        try:
            return self._by_id[facility_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise UnknownFacilityError(
                f"There is no facility {facility_id!r}; known facilities: {known}.",
                errors=[{"field": "facility", "message": f"unknown facility {facility_id!r}"}],
            ) from None

    def search(
        self,
        *,
        gpu: bool | None = None,
        min_memory_gb: float | None = None,
        min_cores: int | None = None,
        vo: str | None = None,
        min_walltime_s: int | None = None,
    ) -> list[Facility]:
        """Facilities matching every given filter."""
        found = []
        for facility in self.all():
            if gpu is not None and (facility.gpu_count > 0) != gpu:
                continue
            if min_memory_gb is not None and facility.memory_gb < min_memory_gb:
                continue
            if min_cores is not None and facility.cores < min_cores:
                continue
            if min_walltime_s is not None and facility.max_walltime_s < min_walltime_s:
                continue
            if vo is not None and not facility.serves(vo):
                continue
            found.append(facility)
        return found


def shortfalls(facility: Facility, needs: Requirements, vo: str, duration_s: int) -> list[str]:
    """Every way ``facility`` falls short of a job's needs; empty when it can run it."""
    problems = []
    if not facility.serves(vo):
        problems.append(f"it does not serve the VO {vo!r}")
    if needs.cores > facility.cores:
        problems.append(
            f"it offers {facility.cores} cores per task, the workflow needs {needs.cores}"
        )
    if needs.memory_gb > facility.memory_gb:
        problems.append(
            f"it offers {facility.memory_gb} GB per task, the workflow needs {needs.memory_gb} GB"
        )
    if needs.gpu_count > facility.gpu_count:
        problems.append(
            f"it has {facility.gpu_count} GPUs per task, the workflow needs {needs.gpu_count}"
        )
    if needs.gpu_type and facility.gpu_type and needs.gpu_type != facility.gpu_type:
        problems.append(f"its GPUs are {facility.gpu_type}, the workflow needs {needs.gpu_type}")
    if needs.runtime and needs.runtime not in facility.runtimes:
        problems.append(f"it has no {needs.runtime} runtime")
    if duration_s > facility.max_walltime_s or duration_s == 0:
        problems.append(
            f"its longest run is {facility.max_walltime_s} s, the job asks for "
            f"{'unlimited time' if duration_s == 0 else f'{duration_s} s'}"
        )
    return problems


def require_capacity(facility: Facility, needs: Requirements, vo: str, duration_s: int) -> None:
    """Raise FacilityCannotRunError naming each shortfall."""
    problems = shortfalls(facility, needs, vo, duration_s)
    if problems:
        raise FacilityCannotRunError(
            f"Facility {facility.id!r} cannot run this job: " + "; ".join(problems) + ".",
            errors=[{"field": "facility", "message": p} for p in problems],
        )
