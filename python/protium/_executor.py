"""_executor.py — the executor process of a Python session: the driver starts
`python .../protium/_executor.py PATH...` (executor.command) with
PROTIUM_EXECUTOR_* in its environment. It takes the driver's import paths (so
that functions pickled by reference import here), registers the callbacks
of protium._worker and serves tasks until the driver lets it go.
"""

import sys

if __name__ == "__main__":
    # sys.path[0] is this file's folder; the package's parent comes as argv.
    sys.path[:1] = sys.argv[1:]
    from protium import _lib, _worker

    _worker.register()
    _lib.lib().pt_executor_hook()  # serves tasks and ends the process
    sys.exit("protium executor: started without PROTIUM_EXECUTOR_SOCKET; the driver starts it")
