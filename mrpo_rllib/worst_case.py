"""``mrpo worst-case``: a trained policy's worst environment, found by search.

A grid (what Figure 2 and ``mrpo evaluate`` use) bounds the worst case from above only at its
points: it misses narrow failure regions, and with three or more parameters it is
unaffordable. Here a black-box optimiser searches the parameter box (the run's training or
testing range) for the point of lowest mean return, through **Ray Tune's search-algorithm
interface** (Optuna's samplers via ``ray.tune.search.optuna.OptunaSearch``), each trial one
parameter point evaluated with the same restored-policy rollout code as ``mrpo evaluate``
(:func:`mrpo_rllib.evaluate.evaluate_points`), trials in parallel on the cluster or the local
cores.

- **Common random numbers**: every point is evaluated with the same E episode seeds, so two
  points differ by their parameters, not by their initial states.
- **Re-evaluation**: the worst point found is evaluated again with ``reeval_episodes`` fresh
  episodes (other seeds), which removes the search's selection bias ("winner's curse") from
  the reported return; its 95% CI is a percentile bootstrap over those episodes.
- **Grid minimum**: for up to two searched parameters, the minimum over a grid of the same
  box (same episodes and seeds) is computed for comparison.

The optimiser: ``tpe`` (Optuna's TPE, the default), ``cmaes`` (CMA-ES) or ``random`` (a
baseline), chosen by a measured comparison (docs/worst_case.md;
:mod:`mrpo_rllib.worst_case_study`).

This module is the search: the samplers, the Tune searcher that feeds them fixed batches
(:class:`FixedBatches`), the driver (:func:`search_worst_case`) and its outputs.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pandas as pd
from ray.tune.search import Searcher

from mrpo_rllib.envs.tasks import DEFAULT_RANGE, RANGES, TaskSpec
from mrpo_rllib.plotting import finish_axes, save_figure
from mrpo_rllib.ray_session import ray_session
from mrpo_rllib.statistics import bootstrap_ci

SAMPLERS = ("tpe", "cmaes", "random")
# The search's defaults (mrpo worst-case's too)
DEFAULT_SAMPLER = "tpe"
DEFAULT_BUDGET = 60  # points evaluated
DEFAULT_EPISODES = 5  # episodes per point
DEFAULT_GRID_POINTS = 10  # comparison grid per axis


def make_sampler(name: str, seed: int):
    """The Optuna sampler called ``name`` (see :data:`SAMPLERS`), seeded."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=5, warn_independent_sampling=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {name!r}")


def search_box(spec: TaskSpec, which: str) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """(searched, fixed): the parameters with a non-empty ``which`` range and their bounds,
    and those whose range is one value (CartPole's force on its testing range)."""
    if which not in RANGES:
        raise ValueError(f"range must be one of {list(RANGES)}, got {which!r}")
    searched, fixed = {}, {}
    for p in spec.params:
        lo, hi = getattr(p, which)
        if lo == hi:
            fixed[p.name] = float(lo)
        else:
            searched[p.name] = (float(lo), float(hi))
    return searched, fixed


def tune_search(
    objective: Callable[[dict], dict],
    box: dict[str, tuple[float, float]],
    budget: int,
    sampler: str = DEFAULT_SAMPLER,
    seed: int = 0,
    concurrency: int | None = None,
    storage: str | None = None,
) -> pd.DataFrame:
    """Minimise ``objective(point)["return_mean"]`` over ``box`` with ``budget`` evaluations,
    through Ray Tune and OptunaSearch, ``concurrency`` at a time (batches: the same ``seed``
    gives the same points). Returns one row per evaluated point, in the order the optimiser
    proposed them (``order``): the point, the objective's values, ``best_so_far``."""
    import tempfile

    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
    if not box:
        raise ValueError("nothing to search: every parameter's range is a single value")
    search = OptunaSearch(sampler=make_sampler(sampler, seed), metric="return_mean", mode="min")
    search = FixedBatches(search, batch_size=concurrency or 1, budget=budget)
    space = {name: tune.uniform(lo, hi) for name, (lo, hi) in box.items()}

    def trainable(config):
        return objective({k: float(config[k]) for k in box})

    logging.getLogger("ray.tune").setLevel(logging.WARNING)  # Tune's closing notices
    tmp = None
    if storage is None:
        tmp = tempfile.TemporaryDirectory(prefix="mrpo-worst-case-")
        storage = tmp.name
    try:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(search_alg=search, num_samples=budget, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, name="search", verbose=0),
        )
        results = tuner.fit()
        rows = []
        for r in results:
            if r.error is not None:
                raise RuntimeError(f"evaluating a point failed: {r.error}")
            row = {k: r.config[k] for k in box}
            row.update({k: v for k, v in r.metrics.items() if k.startswith("return") or k == "length_mean"})
            row["order"] = r.config[_ORDER]
            rows.append(row)
    finally:
        if tmp is not None:
            tmp.cleanup()
    df = pd.DataFrame(rows).sort_values("order").reset_index(drop=True)
    df.insert(0, "order", df.pop("order"))
    df["best_so_far"] = df["return_mean"].cummin()
    return df


_ORDER = "__mrpo_order"  # the suggestion's number (1, 2, ...), added to each trial's config


class FixedBatches(Searcher):
    """Asks the wrapped searcher for ``batch_size`` points, runs them, and tells it their
    results together, in the order they were asked, once every point of the batch is done
    (the last batch: once the budget is asked). Tune's ``ConcurrencyLimiter(batch=True)``
    closes a batch when its running trials are done, so a trial that finishes before the
    next is asked (a loaded machine) moves the batch boundary and changes the points;
    here the same seed gives the same points, however the trials are timed. Each
    suggestion carries its number (``_ORDER``): Tune's trial ids from a searcher are
    random, not counters."""

    def __init__(self, searcher, batch_size: int, budget: int):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.batch_size, self.budget = searcher, batch_size, budget
        self.asked = 0
        self.batch: list[str] = []
        self.results: dict[str, tuple] = {}

    def set_search_properties(self, metric, mode, config, **spec):
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id):
        if len(self.batch) >= self.batch_size or self.asked >= self.budget:
            return None  # wait for the batch to close
        point = self.searcher.suggest(trial_id)
        if point in (None, Searcher.FINISHED):
            return point
        self.asked += 1
        self.batch.append(trial_id)
        return {**point, _ORDER: self.asked}

    def on_trial_result(self, trial_id, result):
        self.searcher.on_trial_result(trial_id, result)

    # Tune saves a wrapper's own state beside its searcher's (as ConcurrencyLimiter does)
    def get_state(self) -> dict:
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "searcher"})

    def set_state(self, state: dict):
        self.__dict__.update(state)

    def save(self, checkpoint_path: str):
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str):
        self.searcher.restore(checkpoint_path)

    def on_trial_complete(self, trial_id, result=None, error=False):
        if trial_id not in self.batch:
            return
        self.results[trial_id] = (result, error)
        full = len(self.batch) == self.batch_size or self.asked >= self.budget
        if full and len(self.results) == len(self.batch):
            for tid in self.batch:
                result, error = self.results[tid]
                self.searcher.on_trial_complete(tid, result=result, error=error)
            self.batch, self.results = [], {}


@dataclass
class WorstCase:
    """What ``mrpo worst-case`` found (``worst_case.json``)."""

    checkpoint: str
    task: str
    range: str
    sampler: str
    budget: int
    episodes: int
    seed: int
    searched: dict[str, list[float]]
    fixed: dict[str, float]
    worst_point: dict[str, float]
    worst_return_search: float  # its mean over the search's E episodes (biased low)
    worst_return: float  # its mean over the re-evaluation's fresh episodes
    worst_return_ci: list[float]
    reeval_episodes: int
    grid_points: int | None = None
    grid_min_return: float | None = None
    grid_min_point: dict[str, float] | None = None
    grid_min_reevaluated: float | None = None
    seconds: float = 0.0
    trials: list[dict] = field(default_factory=list, repr=False)


def _policy_objective(policy, episodes: int, seed: int, fixed: dict[str, float], point_index: int = 0):
    from mrpo_rllib.evaluate import evaluate_points

    def objective(point: dict) -> dict:
        (row,) = evaluate_points(policy, [(point_index, {**point, **fixed})], episodes, seed)
        return {k: row[k] for k in ("return_mean", "return_std", "return_min", "length_mean")}

    return objective


def _reevaluate(
    policy, point: dict, fixed: dict, episodes: int, seed: int
) -> tuple[float, tuple[float, float]]:
    """Mean return and bootstrap CI at ``point`` over ``episodes`` fresh episodes (seed + 1:
    none of the search's initial states)."""
    from mrpo_rllib.evaluate import rollout_point

    envs = [policy.make_env() for _ in range(episodes)]
    try:
        returns, _, _ = rollout_point(policy, envs, {**point, **fixed}, 0, seed + 1, True)
    finally:
        for env in envs:
            env.close()
    return float(returns.mean()), bootstrap_ci(returns, seed=seed)


def search_worst_case(
    checkpoint: str,
    which: str = DEFAULT_RANGE,
    budget: int = DEFAULT_BUDGET,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    sampler: str = DEFAULT_SAMPLER,
    reeval_episodes: int | None = None,
    grid_points: int | None = DEFAULT_GRID_POINTS,
    out: str | None = None,
    echo=print,
) -> WorstCase:
    """Search the ``which`` range of the checkpoint's task for its worst point (module docstring).

    ``episodes``: per searched point; ``reeval_episodes``: for the worst point's return and CI
    (default 4 × episodes); ``grid_points``: per axis of the comparison grid (tasks with one or
    two searched parameters; None or 0: no grid). ``out``: a directory for ``worst_case.json``,
    ``trials.csv`` and ``best_so_far.png``.
    """
    import time

    from mrpo_rllib.evaluate import evaluate_many, load_policy

    if which not in RANGES:
        raise ValueError(f"--range must be one of {list(RANGES)}, got {which!r}")
    for name, v in (("budget", budget), ("episodes", episodes)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    reeval_episodes = reeval_episodes or 4 * episodes
    t0 = time.perf_counter()
    policy = load_policy(checkpoint)
    spec = policy.spec
    searched, fixed = search_box(spec, which)
    with ray_session() as ray:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        echo(
            f"{spec.name}: searching the {which} range of {list(searched)} ({sampler}, {budget} points x "
            f"{episodes} episodes, {cpus} at a time)"
        )
        objective = _policy_objective(policy, episodes, seed, fixed)
        trials = tune_search(objective, searched, budget, sampler, seed, concurrency=cpus)
        worst = trials.loc[trials["return_mean"].idxmin()]
        point = {k: float(worst[k]) for k in searched}
        mean, ci = _reevaluate(policy, point, fixed, reeval_episodes, seed)
        result = WorstCase(
            checkpoint=os.fspath(checkpoint),
            task=spec.name,
            range=which,
            sampler=sampler,
            budget=budget,
            episodes=episodes,
            seed=seed,
            searched={k: list(v) for k, v in searched.items()},
            fixed=fixed,
            worst_point=point,
            worst_return_search=float(worst["return_mean"]),
            worst_return=mean,
            worst_return_ci=list(ci),
            reeval_episodes=reeval_episodes,
        )
        if grid_points and len(searched) <= 2:
            (grid,) = evaluate_many([checkpoint], which, grid_points, episodes, seed, True)
            i = int(grid["return_mean"].idxmin())
            result.grid_points = grid_points
            result.grid_min_return = float(grid.loc[i, "return_mean"])
            result.grid_min_point = {k: float(grid.loc[i, k]) for k in searched}
            result.grid_min_reevaluated, _ = _reevaluate(
                policy, result.grid_min_point, fixed, reeval_episodes, seed
            )
    result.seconds = time.perf_counter() - t0
    result.trials = trials.to_dict("records")
    if out:
        write_outputs(result, trials, out)
    return result


def write_outputs(result: WorstCase, trials: pd.DataFrame, out: str) -> None:
    """``worst_case.json``, ``trials.csv`` and ``best_so_far.png`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    trials.to_csv(os.path.join(out, "trials.csv"), index=False)
    with open(os.path.join(out, "worst_case.json"), "w") as f:
        json.dump({k: v for k, v in asdict(result).items() if k != "trials"}, f, indent=2)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(trials["order"], trials["return_mean"], ".", alpha=0.5, label="evaluated point")
    ax.plot(trials["order"], trials["best_so_far"], "-", label="lowest so far")
    if result.grid_min_return is not None:
        n = result.grid_points ** len(result.searched)
        ax.axhline(result.grid_min_return, color="C3", ls=":", label=f"grid minimum ({n} points)")
    finish_axes(
        ax,
        "points evaluated",
        f"mean return over {result.episodes} episodes",
        f"{result.task}, {result.range} range: worst case by {result.sampler}",
        title_size=9,
    )
    save_figure(fig, os.path.join(out, "best_so_far.png"))


def describe(result: WorstCase) -> str:
    """A few readable lines for the console."""
    lo, hi = result.worst_return_ci
    point = ", ".join(f"{k}={v:.4g}" for k, v in result.worst_point.items())
    lines = [
        f"worst point found: {point}",
        f"  return {result.worst_return:.1f} (95% CI [{lo:.1f}, {hi:.1f}], {result.reeval_episodes} fresh "
        f"episodes; {result.worst_return_search:.1f} in the search's {result.episodes})",
    ]
    if result.grid_min_return is not None and result.grid_min_point is not None:
        gp = ", ".join(f"{k}={v:.4g}" for k, v in result.grid_min_point.items())
        lines.append(
            f"grid minimum ({result.grid_points} per axis): {result.grid_min_return:.1f} at {gp} "
            f"({result.grid_min_reevaluated:.1f} re-evaluated)"
        )
    lines.append(f"{result.budget} points in {result.seconds:.0f} s")
    return "\n".join(lines)
