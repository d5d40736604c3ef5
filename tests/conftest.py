import os
import sys

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# The benchmark harness (benchmarks/, not an installed package): `import bench, bench_envs`.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))


@pytest.fixture(scope="session")
def ray_local():
    """An embedded 2-CPU Ray for the whole session, shut down at the end."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()
