"""Environment speed against raw pybullet stepping (see mrpo_rllib/bench_envs.py)."""

import sys

from mrpo_rllib.bench_envs import main

if __name__ == "__main__":
    sys.exit(main())
