"""resources.py — stage-level resource profiles from Python (PySpark's
ResourceProfile and withResources): what each task of a stage takes of its
executor's slots and named resources (gpu, fpga, ...), whole or fractional,
required or optional, as the C layer's pt_resource_profile_*.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from protium import _lib
from protium._lib import PtError

if TYPE_CHECKING:
    from protium.session import Dataset

__all__ = ["ResourceProfile"]

PT_RESOURCE_OPTIONAL = 1


class ResourceProfile:
    """What each task of a stage needs. `cpus`: executor slots per task
    (executor.slots; an executor never runs tasks whose cpus add up to more).
    `gpus` and `resources` ({"fpga": 0.5}): a whole number takes that many
    addresses, each the task's alone; a fraction 0 < amount < 1 shares one
    address among at most floor(1 / amount) tasks (at least 1/64).
    `optional`: names (or True for all) the task takes when free and runs
    without otherwise. Attach with Dataset.with_resources(profile)."""

    def __init__(self, cpus: Optional[int] = None, gpus: Optional[float] = None,
                 resources: Optional[dict[str, float]] = None,
                 optional: Union[bool, Iterable[str]] = False) -> None:
        self.cpus = cpus
        self.requests: dict[str, float] = dict(resources or {})
        if gpus is not None:
            self.requests["gpu"] = gpus
        if optional is True:
            self.optional = set(self.requests)
        elif optional is False:
            self.optional = set()
        else:
            self.optional = set(optional)
        unknown = self.optional - set(self.requests)
        if unknown:
            raise ValueError(f"ResourceProfile: optional names {sorted(unknown)} that the "
                             f"profile does not request (it requests {sorted(self.requests)})")
        # Checked now, by the C layer, so a bad amount fails here.
        self._build().close()

    def __repr__(self) -> str:
        return (f"ResourceProfile(cpus={self.cpus}, resources={self.requests}, "
                f"optional={sorted(self.optional)})")

    def _build(self) -> "_Profile":
        lib = _lib.lib()
        handle = ctypes.c_void_p()
        err = PtError()
        _lib.check(lib.pt_resource_profile_new(ctypes.byref(handle), ctypes.byref(err)), err)
        p = _Profile(handle.value)
        try:
            if self.cpus is not None:
                if not isinstance(self.cpus, int) or isinstance(self.cpus, bool):
                    raise TypeError("ResourceProfile: cpus must be an int")
                _lib.check(lib.pt_resource_profile_cpus(p.ptr, self.cpus, ctypes.byref(err)),
                           err)
            for name, amount in self.requests.items():
                flags = PT_RESOURCE_OPTIONAL if name in self.optional else 0
                _lib.check(lib.pt_resource_profile_require(p.ptr, name.encode(), float(amount),
                                                           flags, ctypes.byref(err)), err)
        except BaseException:
            p.close()
            raise
        return p

    def _apply(self, ds: "Dataset") -> "Dataset":
        """ds with this profile on its stage (pt_with_resources)."""
        p = self._build()
        try:
            return ds.session._dataset(_lib.lib().pt_with_resources, ds._handle(), p.ptr)
        finally:
            p.close()


class _Profile:
    """An owned pt_resource_profile."""

    def __init__(self, ptr: Any) -> None:
        self.ptr = ptr

    def close(self) -> None:
        if self.ptr:
            _lib.lib().pt_resource_profile_free(self.ptr)
            self.ptr = None
