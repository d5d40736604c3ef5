"""MRPO, PW-DR (EPOpt) and PPO-DR on RLlib's new API stack."""

from mrpo_rllib.algorithms.env import ENV_NAME, EpisodeParamsCallback, SeedOnce, make_rllib_env
from mrpo_rllib.algorithms.mrpo import MRPO, MRPOConfig

__all__ = ["ENV_NAME", "MRPO", "EpisodeParamsCallback", "MRPOConfig", "SeedOnce", "make_rllib_env"]
