"""A sweep driver for the multi-node test: ``mrpo tune``'s own code, plus one Tune callback
that freezes a trial at a chosen iteration on a chosen node, so the test can kill that node
at a known point instead of racing a running trial.

    python tests/pausing_driver.py EXPERIMENT.yaml STORAGE NODE_ID ITERATION PAUSED_FILE GO_FILE

When a trial running on NODE_ID reports ITERATION, the callback writes the trial's name to
PAUSED_FILE and waits until GO_FILE exists. While it waits the driver issues no further
``train()`` calls, so the trial stays at ITERATION; the test kills the node and writes
GO_FILE. Runs against the cluster at RAY_ADDRESS.
"""

import os
import sys
import time

from ray.tune import Callback

from mrpo_rllib.experiments import load_experiment
from mrpo_rllib.sweep import run_sweep


class PauseOnNode(Callback):
    def __init__(self, node_id: str, iteration: int, paused_file: str, go_file: str):
        self.node_id, self.iteration = node_id, iteration
        self.paused_file, self.go_file = paused_file, go_file
        self.done = False

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if (
            self.done
            or result.get("node_id") != self.node_id
            or result["training_iteration"] != self.iteration
        ):
            return
        self.done = True
        with open(self.paused_file, "w") as f:
            f.write(trial.config["variant"]["name"])
        deadline = time.time() + 300
        while not os.path.exists(self.go_file) and time.time() < deadline:
            time.sleep(0.1)


if __name__ == "__main__":
    path, storage, node_id, it, paused, go = sys.argv[1:7]
    pause = PauseOnNode(node_id, int(it), paused, go)
    results = run_sweep(load_experiment(path), storage, callbacks=[pause])
    sys.exit(1 if any(r.error is not None for r in results) else 0)
