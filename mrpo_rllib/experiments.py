"""Experiments as data: the schema of a ``tune_configs/*.yaml`` file and its trials.

A file names a task, the algorithms, seeds, κ settings (MRPO only), a budget and
the sampling / checkpoint / evaluation settings. Every combination
algorithm × seed (× κ setting for MRPO) is one trial named
``{algo}__{task}__kappa{k}__seed{s}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mrpo_rllib import runs
from mrpo_rllib.envs import get_task

PositiveInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class KappaSchedule(_Strict):
    """κ rising linearly from ``start`` to ``end`` over ``ramp_iters`` iterations."""

    start: NonNegFloat
    end: NonNegFloat
    ramp_iters: Annotated[int, Field(ge=0)] = 100

    @model_validator(mode="after")
    def _rises(self):
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) must be >= start ({self.start})")
        return self


class Budget(_Strict):
    """Stop after ``iterations`` or after ``env_steps`` sampled steps (exactly one)."""

    iterations: PositiveInt | None = None
    env_steps: PositiveInt | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.iterations is None) == (self.env_steps is None):
            raise ValueError("give exactly one of iterations or env_steps")
        return self

    def stop(self) -> dict[str, int]:
        if self.iterations is not None:
            return {"training_iteration": self.iterations}
        return {"num_env_steps_sampled_lifetime": self.env_steps}


class Evaluation(_Strict):
    """Grid evaluation of each trial's final checkpoint (used by ``mrpo report``)."""

    points: PositiveInt = 5
    episodes: PositiveInt = 3


Probability = Annotated[float, Field(gt=0, le=1)]
NonNeg = Annotated[float, Field(ge=0)]


class Training(_Strict):
    """Settings passed to ``MRPOConfig.training``; a key not given keeps MRPOConfig's default."""

    lr: Annotated[float, Field(gt=0)] | None = None
    num_epochs: PositiveInt | None = None
    # gradient steps per epoch (equal optimiser effort); or RLlib's rows per minibatch, not both
    num_minibatches: PositiveInt | None = None
    minibatch_size: PositiveInt | None = None
    clip_param: Annotated[float, Field(gt=0)] | None = None
    gamma: Probability | None = None
    lambda_: Annotated[float, Field(ge=0, le=1)] | None = None
    vf_loss_coeff: NonNeg | None = None
    vf_clip_param: Annotated[float, Field(gt=0)] | None = None  # .inf: no clamp (the default)
    grad_clip: Annotated[float, Field(gt=0)] | None = None
    entropy_coeff: NonNeg | None = None
    worst_fraction: Probability | None = None
    epopt_alpha: Probability | None = None
    epopt_warmup_iters: Annotated[int, Field(ge=0)] | None = None
    # RLlib's adaptive KL penalty on top of the clipped objective (off by default)
    use_kl_loss: bool | None = None
    kl_coeff: NonNeg | None = None

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Experiment(_Strict):
    """One ``tune_configs/*.yaml`` file."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    task: str
    algorithms: Annotated[list[Literal["mrpo", "epopt", "dr"]], Field(min_length=1)]
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    kappa: Annotated[list[NonNegFloat | KappaSchedule], Field(min_length=1)] = Field(
        default_factory=lambda: [KappaSchedule(start=0.25, end=2.0, ramp_iters=100)]
    )
    budget: Budget
    episodes_per_iteration: PositiveInt = 100
    env_runners_per_trial: Annotated[int, Field(ge=0)] = 1
    envs_per_env_runner: PositiveInt | None = None  # None: MRPOConfig's default
    checkpoint_every: PositiveInt = 10
    max_failures: Annotated[int, Field(ge=0)] = 3
    max_concurrent_trials: PositiveInt | None = None
    evaluation: Evaluation = Field(default_factory=Evaluation)
    training: Training = Field(default_factory=Training)
    # Optional named settings compared in one sweep: every trial runs once per setting, its
    # overrides on top of `training`, its name appended to the trial name (`...__seed0__nmb8`).
    settings: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$")], Training] | None = None

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        return get_task(v).name

    @field_validator("seeds", "algorithms")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicates in {v}")
        return v

    def trials(self) -> list[TrialSpec]:
        """Every trial of the sweep, in a stable order."""
        out = []
        settings = self.settings or {"": Training()}
        for setting, overrides in settings.items():
            for algo in self.algorithms:
                kappas = self.kappa if algo == "mrpo" else [None]
                for k in kappas:
                    if k is None:
                        start = end = 0.0
                        ramp = 0
                    elif isinstance(k, KappaSchedule):
                        start, end, ramp = k.start, k.end, k.ramp_iters
                    else:
                        start = end = float(k)
                        ramp = 0
                    for seed in self.seeds:
                        out.append(
                            TrialSpec(algo, self.task, seed, start, end, ramp, setting, overrides.kwargs())
                        )
        names = [t.name for t in out]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name}: two κ settings give the same trial name")
        return out


@dataclass(frozen=True)
class TrialSpec:
    algo: str
    task: str
    seed: int
    kappa_start: float
    kappa_end: float
    kappa_ramp_iters: int
    setting: str = ""
    training: dict = field(default_factory=dict)  # the setting's overrides

    @property
    def kappa_label(self) -> str:
        return runs.kappa_label(self.algo, self.kappa_start, self.kappa_end)

    @property
    def name(self) -> str:
        return runs.run_name(self.algo, self.task, self.kappa_label, self.seed, self.setting)

    def as_variant(self) -> dict[str, Any]:
        """The dict MRPOConfig applies as ``variant`` (see MRPOConfig.update_from_dict)."""
        return {
            "selection": self.algo,
            "seed": self.seed,
            "kappa_start": self.kappa_start,
            "kappa_end": self.kappa_end,
            "kappa_ramp_iters": self.kappa_ramp_iters,
            "training": dict(self.training),
            "name": self.name,
        }


def _describe(err: ValidationError, path: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        lines.append(f"{path}: key {key!r}: {e['msg']} (value: {value!r})")
    return "\n".join(lines)


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Read and validate one experiment file; ``ValueError`` names the file, key and value."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such experiment file") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return Experiment.model_validate(data)
    except ValidationError as e:
        raise ValueError(_describe(e, path)) from None
