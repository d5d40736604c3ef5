"""The one Ray session policy of every command (train, tune, evaluate, report, worst-case)
and of the benchmark harness.

- Ray already initialised in this process (a test fixture, a notebook): use it as is.
- ``RAY_ADDRESS`` set (a cluster, or the driver of a Ray job): connect to it (unless
  ``embedded``: the benchmarks measure this machine).
- Otherwise start an embedded Ray with ``address="local"``, which never attaches to a stale
  ``ray start`` cluster found on this machine.

Only a session this helper started is shut down when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import logging
import os


@contextlib.contextmanager
def ray_session(
    *, dashboard: bool = False, quiet: bool = True, num_cpus: int | None = None, embedded: bool = False
):
    """A Ray session for the ``with`` block (see the module docstring).

    Args:
        dashboard: start the dashboard with an embedded Ray (sweeps, to watch them).
        quiet: log only errors from Ray and do not forward worker logs to the console.
        num_cpus: the logical CPUs of an embedded Ray (default: Ray's, the machine's cores).
        embedded: start an embedded Ray even when ``RAY_ADDRESS`` is set.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    level = logging.ERROR if quiet else logging.WARNING
    logging.getLogger("ray").setLevel(level)
    if os.environ.get("RAY_ADDRESS") and not embedded:
        ray.init(logging_level=level, log_to_driver=not quiet)
    else:
        cpus = {} if num_cpus is None else {"num_cpus": num_cpus}
        ray.init(
            address="local", include_dashboard=dashboard, logging_level=level, log_to_driver=not quiet, **cpus
        )
    try:
        yield ray
    finally:
        ray.shutdown()
