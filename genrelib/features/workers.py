"""Worker processes of an extraction: one BLAS thread each, and ended with the process that started them."""

from __future__ import annotations

import os


def init_worker() -> None:
    # One BLAS thread per worker: n_jobs processes already use the cores; more threads only contend.
    # (No warm-up call here: computing features inside the initializer made every later call about 40%
    # slower in measurements, for reasons not found; the first task pays the imports instead.)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    die_with_parent()


def die_with_parent() -> None:
    """Make this worker process end as soon as the process that started the pool ends, however it ends.

    A pool's workers otherwise outlive a parent killed with SIGKILL: with the ``forkserver`` start method each
    worker holds the write end of the fork server's "parent alive" pipe and of its own task queue, so the
    workers wait for tasks forever, the fork server waits for them, and the resource tracker for both (measured:
    two idle workers of ~270 MB each, still there minutes later). Here a daemon thread waits on a pidfd of the
    pool's parent (:func:`multiprocessing.parent_process`; with ``forkserver`` the worker's OS parent is the fork
    server, not that process) and kills this process when it exits; PR_SET_PDEATHSIG covers the OS parent. Once
    the workers are gone the fork server and the resource tracker see their pipes close and exit by themselves.
    Linux only (Python >= 3.9, kernel >= 5.3); elsewhere nothing is done.
    """
    import multiprocessing
    import signal
    import threading

    parent = multiprocessing.parent_process()
    if parent is None or not hasattr(os, "pidfd_open"):
        return
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        fd = os.pidfd_open(parent.pid)
    except ProcessLookupError:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGKILL)
    except OSError:  # no pidfd support in this kernel
        return

    def watch() -> None:
        import select

        select.select([fd], [], [])  # readable once the parent has exited
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="genrelib-parent-watch", daemon=True).start()
