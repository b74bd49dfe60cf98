"""Instance types as resource slots, and the machine's capacity that slots are taken from.

An ML instance type (``ml.m5.xlarge``) is read as family + size. The size gives the vCPU count
(``large`` = 2, ``xlarge`` = 4, ``Nxlarge`` = 4·N), the family letter the memory per vCPU, and a
short table the GPUs. A host never asks for more than the whole machine: on a 2-core laptop an
``ml.m5.4xlarge`` job still runs, alone. Jobs that do not fit wait (``Starting``/``Pending``)
until running ones release their slots.
"""

from __future__ import annotations

import dataclasses
import re
import threading

from modelyard.core.errors import ResourceLimitExceeded, ValidationError

_INSTANCE = re.compile(r"^ml\.(?P<family>[a-z]+)(?P<gen>\d+)(?P<attrs>[a-z\-]*)\.(?P<size>.+)$")

# GiB of memory per vCPU by family letter (AWS's published ratios, rounded).
_MEMORY_PER_CPU = {"c": 2.0, "m": 4.0, "r": 8.0, "x": 16.0, "z": 8.0, "t": 4.0, "p": 8.0, "g": 4.0}

# GPUs by (family + generation, size); sizes not listed have no GPU or one GPU for p/g families.
_GPUS = {
    ("p3", "8xlarge"): 4, ("p3", "16xlarge"): 8, ("p3dn", "24xlarge"): 8,
    ("p4d", "24xlarge"): 8, ("p4de", "24xlarge"): 8, ("p5", "48xlarge"): 8,
    ("g4dn", "12xlarge"): 4, ("g5", "12xlarge"): 4, ("g5", "24xlarge"): 4, ("g5", "48xlarge"): 8,
    ("g6", "12xlarge"): 4, ("g6", "24xlarge"): 4, ("g6", "48xlarge"): 8,
}


@dataclasses.dataclass(frozen=True)
class Slot:
    """What one host of a job takes from the machine."""

    cpus: float
    memory_gib: float
    gpus: int = 0


def instance_slot(instance_type: str) -> Slot:
    """The nominal resources of one instance of ``instance_type``.

    >>> instance_slot("ml.m5.xlarge")
    Slot(cpus=4, memory_gib=16.0, gpus=0)
    """
    match = _INSTANCE.match(instance_type)
    if not match:
        raise ValidationError(f"Instance type {instance_type} is not recognised.")
    family, size = match["family"], match["size"]
    cpus = _size_cpus(size)
    memory = cpus * _MEMORY_PER_CPU.get(family[0], 4.0)
    gpus = _GPUS.get((family + match["gen"] + match["attrs"].replace("-", ""), size), 0)
    if gpus == 0 and family in ("p", "g"):
        gpus = 1
    return Slot(cpus=cpus, memory_gib=memory, gpus=gpus)


def _size_cpus(size: str) -> int:
    if size in ("nano", "micro", "small", "medium", "large"):
        return 2
    if size == "xlarge":
        return 4
    if size.endswith("xlarge") and size[:-6].isdigit():
        return 4 * int(size[:-6])
    if size == "metal":
        return 96
    raise ValidationError(f"Instance size {size} is not recognised.")


class Capacity:
    """The machine's cores, memory and GPUs, handed out as slots. Thread-safe.

    ``try_acquire`` never blocks: a job that does not fit stays queued and the controller asks
    again on its next pass, so one large job cannot stall the reconcile loop.
    """

    def __init__(self, cpus: float, memory_gib: float, gpus: int = 0) -> None:
        self.total = Slot(cpus=cpus, memory_gib=memory_gib, gpus=gpus)
        self._used: dict[str, Slot] = {}
        self._lock = threading.Lock()

    def fit(self, slot: Slot) -> Slot:
        """``slot`` clipped to the whole machine, so that every job can run at least alone."""
        if slot.gpus > self.total.gpus:
            raise ResourceLimitExceeded(
                f"The instance type needs {slot.gpus} GPU(s); this machine has {self.total.gpus}."
            )
        return Slot(
            cpus=min(slot.cpus, self.total.cpus),
            memory_gib=min(slot.memory_gib, self.total.memory_gib),
            gpus=slot.gpus,
        )

    def try_acquire(self, holder: str, slots: list[Slot]) -> bool:
        """Take all ``slots`` for ``holder`` at once, or nothing. Re-acquiring is a no-op."""
        with self._lock:
            if holder in self._used:
                return True
            need = _sum(self.fit(s) for s in slots)
            free = self._free()
            if need.cpus > free.cpus + 1e-9 or need.memory_gib > free.memory_gib + 1e-9:
                return False
            if need.gpus > free.gpus:
                return False
            self._used[holder] = need
            return True

    def force_acquire(self, holder: str, slots: list[Slot]) -> None:
        """Record slots already in use (a job reattached after a restart), even if over."""
        with self._lock:
            self._used[holder] = _sum(self.fit(s) for s in slots)

    def release(self, holder: str) -> None:
        with self._lock:
            self._used.pop(holder, None)

    def _free(self) -> Slot:
        used = _sum(self._used.values())
        return Slot(
            cpus=self.total.cpus - used.cpus,
            memory_gib=self.total.memory_gib - used.memory_gib,
            gpus=self.total.gpus - used.gpus,
        )


def _sum(slots: object) -> Slot:
    cpus = memory = 0.0
    gpus = 0
    for s in slots:  # type: ignore[attr-defined]
        cpus += s.cpus
        memory += s.memory_gib
        gpus += s.gpus
    return Slot(cpus=cpus, memory_gib=memory, gpus=gpus)
