"""The one Ray session policy of every command (train, tune, evaluate, report, worst-case).

- Ray already initialised in this process (a test fixture, a notebook): use it as is.
- ``RAY_ADDRESS`` set (a cluster, or the driver of a Ray job): connect to it.
- Otherwise start an embedded Ray with ``address="local"``, which never attaches to a stale
  ``ray start`` cluster found on this machine.

Only a session this helper started is shut down when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import logging
import os


@contextlib.contextmanager
def ray_session(*, dashboard: bool = False, quiet: bool = True):
    """A Ray session for the ``with`` block (see the module docstring).

    Args:
        dashboard: start the dashboard with an embedded Ray (sweeps, to watch them).
        quiet: log only errors from Ray and do not forward worker logs to the console.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    level = logging.ERROR if quiet else logging.WARNING
    logging.getLogger("ray").setLevel(level)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(logging_level=level, log_to_driver=not quiet)
    else:
        ray.init(address="local", include_dashboard=dashboard, logging_level=level, log_to_driver=not quiet)
    try:
        yield ray
    finally:
        ray.shutdown()
