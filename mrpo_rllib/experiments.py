"""Experiments as data: the one user-facing description of a run or a sweep.

A ``tune_configs/*.yaml`` file (``mrpo tune``) or the command line of ``mrpo train`` (a
one-trial experiment) names a task, the algorithms, seeds, κ settings (MRPO only), a budget
and, optionally, any algorithm setting. **A key not given means MRPOConfig's default**: the
defaults live in :class:`~mrpo_rllib.algorithms.MRPOConfig` alone, and so do the range
checks of every algorithm setting (:meth:`Experiment.check` builds and validates each
trial's config and names the file, the key and the value when one is wrong). The schema
itself checks the structure and the settings that are the experiment's own (seeds, budget,
checkpoints, failures, evaluation).

Every combination setting × algorithm × κ setting (MRPO only) × seed is one trial, named
``{algo}__{task}__kappa{k}__seed{s}[__{setting}]`` (:mod:`mrpo_rllib.runs`).

``training:`` takes every keyword of ``MRPOConfig.training`` (read from its signature, so a
new option of the config needs no listing here) except the trial's own (``selection`` and the
κ schedule: ``algorithms`` and ``kappa``), M (``episodes_per_iteration``) included, plus the
RLlib PPO settings of :data:`RLLIB_TRAINING`. A key given, even as ``null``, is passed on as
given (``num_minibatches: null``: RLlib's minibatch mode); a key left out keeps the config's
default.

``--set key=value`` on the command line overrides a key of the file (``training.lr=1e-3``,
``training.episodes_per_iteration=50``, ``kappa=[1.0]``); the value is read as YAML.
"""

from __future__ import annotations

import copy
import inspect
import os
from dataclasses import dataclass, field
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from mrpo_rllib import runs
from mrpo_rllib.envs import get_task
from mrpo_rllib.selection import SELECTIONS

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class KappaSchedule(_Strict):
    """κ rising linearly from ``start`` to ``end`` over ``ramp_iters`` iterations
    (not given: MRPOConfig's ramp)."""

    start: float
    end: float
    ramp_iters: int | None = None


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
    """Grid evaluation of each trial's checkpoints (used by ``mrpo report``); a key not given
    means :mod:`mrpo_rllib.evaluate`'s default (``DEFAULT_POINTS``, ``DEFAULT_EPISODES``)."""

    points: PositiveInt | None = None
    episodes: PositiveInt | None = None


# MRPOConfig.training keywords that are the trial's own: ``algorithms`` and ``kappa`` set them.
TRIAL_KEYWORDS = ("selection", "kappa_start", "kappa_end", "kappa_ramp_iters")
# RLlib's PPO settings an experiment may set under ``training:`` (MRPOConfig.training passes
# them on to PPOConfig.training), with the type a YAML value is read as.
RLLIB_TRAINING: dict[str, Any] = {
    "lr": float,
    "num_epochs": int,
    "minibatch_size": int | None,  # RLlib's rows per minibatch: not with num_minibatches
    "clip_param": float,
    "gamma": float,
    "lambda_": float,
    "vf_loss_coeff": float,
    "vf_clip_param": float,  # .inf: no clamp (the default)
    "grad_clip": float | None,
    "entropy_coeff": float,
    "use_kl_loss": bool,  # RLlib's adaptive KL penalty on top of the clipped objective
    "kl_coeff": float,
}


def mrpo_training_keywords() -> dict[str, Any]:
    """The keywords of ``MRPOConfig.training``'s own signature (the trial's left out), with
    their annotated types: what ``training:`` takes besides :data:`RLLIB_TRAINING`."""
    from mrpo_rllib.algorithms import MRPOConfig

    sig = inspect.signature(MRPOConfig.training, eval_str=True)
    return {
        name: (Any if p.annotation is inspect.Parameter.empty else p.annotation)
        for name, p in sig.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in TRIAL_KEYWORDS
    }


class _TrainingBase(_Strict):
    def kwargs(self) -> dict[str, Any]:
        """The keys given (``null`` included), for ``MRPOConfig.training``."""
        return self.model_dump(exclude_unset=True)


Training = create_model(
    "Training",
    __base__=_TrainingBase,
    __doc__="Algorithm settings for ``MRPOConfig.training``: its own keywords (see its "
    "docstring) and RLLIB_TRAINING; a key not given keeps MRPOConfig's default, and "
    "MRPOConfig checks the values.",
    **{name: (kind, None) for name, kind in {**RLLIB_TRAINING, **mrpo_training_keywords()}.items()},
)


class Experiment(_Strict):
    """One experiment: a ``tune_configs/*.yaml`` file, or one ``mrpo train`` run."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    task: str
    algorithms: Annotated[list[str], Field(min_length=1)]
    seeds: Annotated[list[NonNegInt], Field(min_length=1)]
    budget: Budget
    # The randomized parameters and their ranges: name -> [low, high] (training range) or
    # {train: [low, high], test: [low, high]}; Table 1's parameters and extra ones (power,
    # torso_mass, ...). Not given: the task's Table 1 parameters and ranges.
    randomize: dict[str, list[float] | dict[str, list[float]]] | None = None
    # Algorithm settings: not given = MRPOConfig's default.
    kappa: Annotated[list[float | KappaSchedule], Field(min_length=1)] | None = None
    env_runners_per_trial: int | None = None
    envs_per_env_runner: int | None = None
    training: Training = Field(default_factory=Training)
    # Optional named settings compared in one sweep: every trial runs once per setting, its
    # overrides on top of `training`, its name appended to the trial name (`...__seed0__nmb8`).
    settings: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$")], Training] | None = None
    # The experiment's own settings.
    checkpoint_every: PositiveInt = 10
    max_failures: NonNegInt = 3
    max_concurrent_trials: PositiveInt | None = None
    evaluation: Evaluation = Field(default_factory=Evaluation)

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        return get_task(v).name

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, v: list[str]) -> list[str]:
        unknown = [a for a in v if a not in SELECTIONS]
        if unknown:
            raise ValueError(f"unknown algorithm(s) {unknown}; expected some of {list(SELECTIONS)}")
        return v

    @field_validator("seeds", "algorithms")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicates in {v}")
        return v

    # -- configs ----------------------------------------------------------------------------
    def base_config(self):
        """The MRPOConfig every trial starts from: MRPOConfig's defaults plus the keys given."""
        from mrpo_rllib.algorithms import MRPOConfig

        runners = {}
        if self.env_runners_per_trial is not None:
            runners["num_env_runners"] = self.env_runners_per_trial
        if self.envs_per_env_runner is not None:
            runners["num_envs_per_env_runner"] = self.envs_per_env_runner
        training = self.training.kwargs()
        return (
            MRPOConfig()
            .environment(
                self.task, env_config={"task": self.task, "params": None, "randomize": self.randomize}
            )
            .env_runners(**runners)
            .training(**training)
            .debugging(log_level="ERROR")
        )

    def trials(self) -> list[TrialSpec]:
        """Every trial of the sweep, in a stable order: seed by seed, each seed's trials in file order."""
        from mrpo_rllib.algorithms import MRPOConfig

        default = MRPOConfig()
        out = []
        for setting, overrides in (self.settings or {"": Training()}).items():
            for algo in self.algorithms:
                for k in (self.kappa or [None]) if algo == "mrpo" else [None]:
                    if algo != "mrpo":
                        kappa = (0.0, 0.0, 0)
                    elif k is None:
                        kappa = (default.kappa_start, default.kappa_end, default.kappa_ramp_iters)
                    elif isinstance(k, KappaSchedule):
                        ramp = default.kappa_ramp_iters if k.ramp_iters is None else k.ramp_iters
                        kappa = (k.start, k.end, ramp)
                    else:
                        kappa = (float(k), float(k), 0)
                    for seed in self.seeds:
                        out.append(TrialSpec(algo, self.task, seed, *kappa, setting, overrides.kwargs()))
        # seed-major: a sweep cut short holds complete seeds of every algorithm and setting
        out.sort(key=lambda t: self.seeds.index(t.seed))
        names = [t.name for t in out]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name}: two κ settings give the same trial name")
        return out

    def trial_config(self, trial: TrialSpec):
        """The validated MRPOConfig of one trial (what Tune builds from the trial's variant)."""
        config = self.base_config()
        return config.update_from_dict({"variant": trial.as_variant()})

    def check(self, source: str = "experiment") -> None:
        """Build and validate every trial's MRPOConfig; ``ValueError`` names ``source``, the
        trial, the key and MRPOConfig's message (which names the value and what is expected)."""
        for trial in self.trials():
            try:
                self.trial_config(trial).validate()
            except ValueError as e:
                raise ValueError(f"{source}: trial {trial.name}: {self._key_of(e, trial)}{e}") from None

    def _key_of(self, error: ValueError, trial: TrialSpec) -> str:
        """``"key 'training.lr': "`` for the experiment key behind a config attribute's error."""
        if " randomize" in str(error):
            return "key 'randomize': "
        attr = str(error).split(" ", 1)[0].strip("`'")
        keys = {
            "kappa_start": "kappa",
            "kappa_end": "kappa",
            "kappa_ramp_iters": "kappa",
            "num_env_runners": "env_runners_per_trial",
            "num_envs_per_env_runner": "envs_per_env_runner",
        }
        if attr in trial.training:
            return f"key 'settings.{trial.setting}.{attr}': "
        if attr in self.training.kwargs():
            return f"key 'training.{attr}': "
        return f"key {keys[attr]!r}: " if attr in keys else ""


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


# -- reading -------------------------------------------------------------------------------------
def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        lines.append(f"{source}: key {key!r}: {e['msg']} (value: {value!r})")
    return "\n".join(lines)


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """``data`` with ``key=value`` overrides applied: dotted keys into nested mappings, values
    read as YAML (``training.lr=1e-3``, ``kappa=[1.0]``, ``budget={iterations: 5}``)."""
    data = copy.deepcopy(data)
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value, e.g. training.lr=0.001")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"--set {item!r}: value is not valid YAML ({e})") from None
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {p!r} is not a mapping")
        node[last] = value
    return data


# Keys of an earlier schema: where they went.
MOVED = {"episodes_per_iteration": "training.episodes_per_iteration"}


def parse_experiment(data: Any, source: str = "experiment", check: bool = True) -> Experiment:
    """Validate a mapping as an Experiment (and, with ``check``, every trial's MRPOConfig)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    for old, new in MOVED.items():
        if old in data:
            parent, _, key = new.rpartition(".")
            raise ValueError(
                f"{source}: key {old!r}: moved under {parent}: (write `{parent}: {{{key}: "
                f"{data[old]!r}}}`, or --set {new}={data[old]!r})"
            )
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as e:
        raise ValueError(_describe(e, source)) from None
    if check:
        exp.check(source)
    return exp


def load_experiment(
    path: str | os.PathLike, overrides: list[str] | None = None, check: bool = True
) -> Experiment:
    """Read one experiment file (plus ``--set`` overrides) and validate it; ``ValueError``
    names the file, key and value. ``check=False`` skips building the trials' configs."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such experiment file") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if isinstance(data, dict):
        data = apply_overrides(data, overrides)
    return parse_experiment(data, path, check)


def saved_experiment(sweep_dir: str) -> Experiment | None:
    """The experiment a sweep saved next to its trials (:func:`mrpo_rllib.runs.read_experiment`),
    validated (its trials' configs not built); None when there is none or it does not parse
    (a file of an older schema)."""
    data = runs.read_experiment(sweep_dir)
    if data is None:
        return None
    try:
        return parse_experiment(data, os.path.join(sweep_dir, runs.EXPERIMENT_FILE), check=False)
    except ValueError:
        return None


def dump_experiment(exp: Experiment) -> str:
    """The experiment as YAML, only the keys that were given (what a sweep stores)."""
    return yaml.safe_dump(exp.model_dump(exclude_unset=True), sort_keys=False)
