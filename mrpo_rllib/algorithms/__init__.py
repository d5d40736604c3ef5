"""MRPO, PW-DR (EPOpt) and PPO-DR on RLlib's new API stack."""

from mrpo_rllib.algorithms.callbacks import MRPOCallbacks
from mrpo_rllib.algorithms.env import ENV_NAME, SeedOnce, make_rllib_env
from mrpo_rllib.algorithms.mrpo import MRPO, MRPOConfig

__all__ = ["ENV_NAME", "MRPO", "MRPOCallbacks", "MRPOConfig", "SeedOnce", "make_rllib_env"]
