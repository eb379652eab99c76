"""protium — Python binding of libprotium, a data-parallel engine in C.

This package is thin: the work happens in libprotium.so (found through
PT_LIBRARY, PT_BUILD_DIR or ../build of a source checkout; see
protium._lib), and data crosses to and from pyarrow through the Arrow C Data
Interface. Submodules:

    protium.arrow   Arrow IPC read/write, validate, copy, slice (needs pyarrow)
    protium.parquet Parquet read (columns, row-group filters) and write (needs pyarrow)
"""

from __future__ import annotations

from protium._lib import ProtiumError, lib

__all__ = ["ProtiumError", "version"]


def version() -> str:
    """Version of the loaded libprotium, "MAJOR.MINOR.PATCH"."""
    return lib().pt_version().decode()
