"""_executor.py — the executor process of a Python session: the driver starts
`python .../protium/_executor.py PATH...` (executor.command) with
PROTIUM_EXECUTOR_* in its environment. It takes the driver's import paths (so
that functions pickled by reference import here), registers the callbacks
of protium._worker and serves tasks until the driver lets it go.
"""

import os
import sys


def _note_crash_on_exit() -> None:
    """os._exit in a task ends the executor with every task in it, without
    a signal for libprotium's handlers to see: first leave the crash note
    that lets the driver fail that task alone (libprotium writes it only
    on a task's thread of this very process, never in a forked child)."""
    from protium import _lib

    real_exit = os._exit
    note = _lib.lib().pt__executor_note_crash

    def _exit(status: int) -> None:
        note()
        real_exit(status)

    _exit.__doc__ = real_exit.__doc__
    os._exit = _exit


if __name__ == "__main__":
    # sys.path[0] is this file's folder; the package's parent comes as argv.
    sys.path[:1] = sys.argv[1:]
    from protium import _lib, _worker

    _worker.register()
    _note_crash_on_exit()
    _lib.lib().pt_executor_hook()  # serves tasks and ends the process
    sys.exit("protium executor: started without PROTIUM_EXECUTOR_SOCKET; the driver starts it")
