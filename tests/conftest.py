import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_local():
    """An embedded 2-CPU Ray for the whole session, shut down at the end."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cartpole_sweep(ray_local, tmp_path_factory):
    """A real CartPole sweep shared by test_evaluate.py and test_promises_run.py (one Tune run
    for both): MRPO, seeds 0 and 3, two iterations with a checkpoint after each, lr 0.0007."""
    from sweeps import run_experiment

    return run_experiment(
        tmp_path_factory.mktemp("cartpole_sweep"),
        "cartpole_sweep",
        task="CartPole",
        algorithms=["mrpo"],
        seeds=[0, 3],
        budget={"iterations": 2},
        checkpoint_every=1,
        training={"num_epochs": 2, "num_minibatches": 2, "lr": 0.0007},
    )
