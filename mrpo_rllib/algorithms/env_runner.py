"""An EnvRunner that samples exactly n complete episodes from several envs, without bias.

RLlib's ``SingleAgentEnvRunner.sample(num_episodes=n)`` steps its k sub-envs together and
returns the first n episodes to *finish*; the ones still running are dropped. Short
episodes finish first, so with k > 1 the batch over-represents them — for MRPO, whose
point is the worst episodes, a biased sample of exactly the environments that matter.

:class:`EpisodeEnvRunner` keeps the first n episodes to *start* instead, and runs each of
them to its end. Whether an episode is kept is decided when it starts, before anything
about it (parameters, length, return) is known, so the n episodes are an unbiased sample
of the episode distribution, as with one env. Sub-envs are stepped one by one (a slot
whose quota is done stops, nothing is stepped for nothing), while the policy runs on all
running episodes as one batch: RLlib's per-step overhead of connectors, forward pass and
bookkeeping (about 1 ms here) is paid once per batch instead of once per env step.

The loop mirrors RLlib's ``_sample``: the same connectors (observation normalisation
included, terminal observations too; it and the action unsquashing work on the whole
batch at once, see :mod:`~mrpo_rllib.algorithms.connectors`), callbacks
(``on_episode_created/start/step/end``), episode metrics and counters; the first reset of
the runner is seeded with RLlib's seed (sub-env i of runner w then derives its own stream,
see :class:`~mrpo_rllib.algorithms.env.SeedOnce`), later resets continue each sub-env's
stream.
Needs the ``"sync"`` vector mode (the sub-envs live in this process). ``num_timesteps``
sampling and random actions are RLlib's, unchanged.
"""

from __future__ import annotations

import time

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.connectors.module_to_env.normalize_and_clip_actions import NormalizeAndClipActions
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics import (
    ENV_RESET_TIMER,
    ENV_STEP_TIMER,
    ENV_TO_MODULE_CONNECTOR,
    MODULE_TO_ENV_CONNECTOR,
    RLMODULE_INFERENCE_TIMER,
    WEIGHTS_SEQ_NO,
)

from mrpo_rllib.algorithms.acting import BatchActor
from mrpo_rllib.algorithms.connectors import BatchNormalizeAndClipActions

# Mean wall time of one sub-env ``step`` call in the last ``sample`` (seconds), in the
# runner's metrics: the physics' share of the sampling time.
ENV_STEP_TIME_PER_STEP = "env_step_time_per_step_s"


class EpisodeEnvRunner(SingleAgentEnvRunner):
    """``sample(num_episodes=n)``: the first n episodes started over the sub-envs, each
    run to its end, as one batch through the policy (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # RLlib's default action unsquashing loops over the batch; ours does it at once
        pieces = self._module_to_env.connectors
        for i, piece in enumerate(pieces):
            if type(piece) is NormalizeAndClipActions:
                pieces[i] = BatchNormalizeAndClipActions.replacing(piece)

    def _sample(
        self,
        *,
        num_timesteps=None,
        num_episodes=None,
        explore: bool,
        random_actions: bool = False,
        force_reset: bool = False,
    ):
        if num_episodes is None or random_actions or self.module is None:
            return super()._sample(
                num_timesteps=num_timesteps,
                num_episodes=num_episodes,
                explore=explore,
                random_actions=random_actions,
                force_reset=force_reset,
            )
        if self._batched_path_applies():
            return self._sample_episodes_batched(num_episodes, explore)
        return self._sample_episodes(num_episodes, explore)

    # -- the loop ------------------------------------------------------------------------
    def _sub_envs(self) -> list:
        envs = getattr(self.env.unwrapped, "envs", None)
        if envs is None:
            raise ValueError(
                f"{type(self).__name__} steps its sub-envs one by one and needs "
                f"gym_env_vectorize_mode='sync', got {self.config.gym_env_vectorize_mode!r}"
            )
        return envs

    def _to_module(self, episodes: list, explore: bool, shared: dict):
        """The env-to-module pipeline on ``episodes``: normalises each one's newest
        observation (in the episode) and returns the batch for the module."""
        return self._env_to_module(
            rl_module=self.module,
            batch={},
            episodes=episodes,
            explore=explore,
            shared_data=shared,
            metrics=self.metrics,
            metrics_prefix_key=(ENV_TO_MODULE_CONNECTOR,),
        )

    def _start(self, slot: int, episodes: list, obs, info) -> None:
        episodes[slot].add_env_reset(observation=obs, infos=info)
        self._make_on_episode_callback("on_episode_start", slot, episodes)

    def _end(self, slot: int, episodes: list, done_episodes: list) -> None:
        """Episode ``slot`` is complete: ``on_episode_end``, kept (as numpy), and a new
        episode object created in its slot."""
        self._make_on_episode_callback("on_episode_end", slot, episodes)
        ep = episodes[slot]
        done_episodes.append(ep.to_numpy() if self.episodes_to_numpy else ep)
        self._new_episode(slot, episodes)

    def _first_seed(self) -> int:
        """The seed of this runner's first reset: RLlib's, or — for a runner that starts after
        training has begun, i.e. one restarted after a failure (its synced weights have a
        sequence number > 0) — one mixed with that number, so that it does not replay the
        environments its predecessor already sampled."""
        if not self._weights_seq_no:
            return self._seed
        ss = np.random.SeedSequence([int(self._seed), int(self._weights_seq_no)])
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def _reset_slot(self, envs: list, slot: int):
        """Reset sub-env ``slot`` for its next episode. Its first reset is seeded (sub-env i
        with seed + i, as gymnasium's vector reset does, see :meth:`_first_seed`) and starts
        its stream; later ones continue it. A slot is seeded when it first starts an episode,
        so a slot left idle by a small n does not lose the start of its stream."""
        seeded = self.__dict__.setdefault("_seeded_slots", set())
        if slot in seeded:
            return envs[slot].reset()
        seeded.add(slot)
        return envs[slot].reset(seed=None if self._seed is None else self._first_seed() + slot)

    def _sample_episodes(self, n: int, explore: bool) -> list:
        """The loop through RLlib's connector pipelines, one ``add_env_step`` per env step:
        the reference the batched loop is tested against, and the path for pipelines,
        modules or callbacks the batched loop does not cover."""
        envs = self._sub_envs()
        k = len(envs)
        episodes: list = [None] * k  # the episode running in each slot
        for slot in range(k):
            self._new_episode(slot, episodes)
        self._ongoing_episodes_for_metrics.clear()
        self._cached_to_module = None

        # The first min(n, k) slots start the first kept episodes.
        with self.metrics.log_time(ENV_RESET_TIMER):
            started = [self._reset_slot(envs, slot) for slot in range(min(n, k))]
        for slot, (obs, info) in enumerate(started):
            self._start(slot, episodes, obs, info)
        running = list(range(len(started)))
        n_started = len(running)

        done_episodes = []
        ts = 0
        stride = self.config.num_env_runners or 1
        while running:
            batch_eps = [episodes[s] for s in running]
            shared: dict = {}  # connector scratch space of this step (batch layout)
            to_module = self._to_module(batch_eps, explore, shared)
            with self.metrics.log_time(RLMODULE_INFERENCE_TIMER):
                if explore:
                    t = (self.num_env_steps_sampled_lifetime // stride + ts) * stride
                    to_env = self.module.forward_exploration(to_module, t=t)
                else:
                    to_env = self.module.forward_inference(to_module)
            to_env = self._module_to_env(
                rl_module=self.module,
                batch=to_env,
                episodes=batch_eps,
                explore=explore,
                shared_data=shared,
                metrics=self.metrics,
                metrics_prefix_key=(MODULE_TO_ENV_CONNECTOR,),
            )
            actions = to_env.pop(Columns.ACTIONS)
            actions_for_env = to_env.pop(Columns.ACTIONS_FOR_ENV, actions)

            ended = []
            with self.metrics.log_time(ENV_STEP_TIMER):
                results = [envs[s].step(actions_for_env[row]) for row, s in enumerate(running)]
            for row, (s, (obs, reward, terminated, truncated, info)) in enumerate(
                zip(running, results, strict=True)
            ):
                extra = {key: value[row] for key, value in to_env.items()}
                extra[WEIGHTS_SEQ_NO] = self._weights_seq_no
                episodes[s].add_env_step(
                    observation=obs,
                    action=actions[row],
                    reward=reward,
                    infos=info,
                    terminated=terminated,
                    truncated=truncated,
                    extra_model_outputs=extra,
                )
                ts += 1
                self._make_on_episode_callback("on_episode_step", s, episodes)
                if terminated or truncated:
                    ended.append(s)
            if not ended:
                continue

            # Normalise the terminal observations too (RLlib's loop does; PPO bootstraps
            # the value of a truncated episode's last observation).
            self._to_module([episodes[s] for s in ended], explore, {})
            for s in ended:
                self._end(s, episodes, done_episodes)
                if n_started < n:  # this slot starts the next kept episode
                    n_started += 1
                    with self.metrics.log_time(ENV_RESET_TIMER):
                        obs, info = self._reset_slot(envs, s)
                    self._start(s, episodes, obs, info)
                else:
                    running.remove(s)

        self._done_episodes_for_metrics.extend(done_episodes)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=ts)
        self._increase_sampled_metrics(ts, len(done_episodes))
        return done_episodes

    # -- the batched loop ----------------------------------------------------------------
    def _batched_path_applies(self) -> bool:
        """Whether :meth:`_sample_episodes_batched` computes exactly what the connector loop
        would (:meth:`BatchActor.applies`) and no callback acts on every env step."""
        cached = self.__dict__.get("_batched_ok")
        if cached is None:
            cached = self._batched_ok = BatchActor.applies(
                self.module,
                self._env_to_module,
                self._module_to_env,
                self.env.single_observation_space,
                self.env.single_action_space,
            ) and not _overrides_on_episode_step(self._callbacks, self.config)
        return cached

    def _sample_episodes_batched(self, n: int, explore: bool) -> list:
        """The same episodes as :meth:`_sample_episodes`, with the per-env-step work done as
        array work over the running envs (:class:`~mrpo_rllib.algorithms.acting.BatchActor`:
        one filter call, one module forward, one action draw and one unsquash per step of
        the batch); each episode's data kept in lists and turned into a
        ``SingleAgentEpisode`` once, when it ends."""
        envs = self._sub_envs()
        k = len(envs)
        space = self.env.single_observation_space
        actor = BatchActor(
            self.module, self._env_to_module, self._module_to_env, space, self.env.single_action_space
        )

        episodes: list = [None] * k  # the (reset-only) episode object of each slot
        for slot in range(k):
            self._new_episode(slot, episodes)
        self._ongoing_episodes_for_metrics.clear()
        self._cached_to_module = None
        data: list = [None] * k  # per slot: the running episode's data, as lists
        latest: list = [None] * k  # per slot: the newest raw observation

        def start(slot, obs, info):
            self._start(slot, episodes, obs, info)
            data[slot] = _EpisodeData(info)
            latest[slot] = obs

        with self.metrics.log_time(ENV_RESET_TIMER):
            started = [self._reset_slot(envs, slot) for slot in range(min(n, k))]
        for slot, (obs, info) in enumerate(started):
            start(slot, obs, info)
        running = list(range(len(started)))
        n_started = len(running)

        done_episodes = []
        ts = 0
        stride = self.config.num_env_runners or 1
        env_time = 0.0
        while running:
            obs = actor.normalize(np.stack([latest[s] for s in running]))
            for row, s in enumerate(running):
                data[s].observations.append(obs[row])
            t = (self.num_env_steps_sampled_lifetime // stride + ts) * stride if explore else None
            actions, actions_for_env, extra = actor.act(obs, explore, t)
            extra_items = list(extra.items())

            t0 = time.perf_counter()
            results = [envs[s].step(actions_for_env[row]) for row, s in enumerate(running)]
            env_time += time.perf_counter() - t0
            ended = []
            for row, (s, (o, reward, terminated, truncated, info)) in enumerate(
                zip(running, results, strict=True)
            ):
                d = data[s]
                d.actions.append(actions[row])
                d.rewards.append(reward)
                d.infos.append(info)
                for key, v in extra_items:
                    d.extra.setdefault(key, []).append(v[row])
                latest[s] = o
                if terminated or truncated:
                    d.terminated, d.truncated = bool(terminated), bool(truncated)
                    ended.append(s)
            ts += len(running)
            if not ended:
                continue

            # The terminal observations are normalised too (as RLlib's loop does; PPO
            # bootstraps the value of a truncated episode's last observation).
            terminal = actor.normalize(np.stack([latest[s] for s in ended]))
            for row, s in enumerate(ended):
                data[s].observations.append(terminal[row])
                episodes[s] = data[s].episode(
                    episodes[s], actor.observation_space, self.env.single_action_space
                )
                self._end(s, episodes, done_episodes)
                if n_started < n:  # this slot starts the next kept episode
                    n_started += 1
                    with self.metrics.log_time(ENV_RESET_TIMER):
                        o, info = self._reset_slot(envs, s)
                    start(s, o, info)
                else:
                    running.remove(s)

        self.metrics.log_value(ENV_STEP_TIME_PER_STEP, env_time / max(ts, 1), reduce="mean", window=1)
        self._done_episodes_for_metrics.extend(done_episodes)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=ts)
        self._increase_sampled_metrics(ts, len(done_episodes))
        return done_episodes


class _EpisodeData:
    """One running episode's data, appended per env step, turned into a
    ``SingleAgentEpisode`` once at its end (:meth:`episode`)."""

    __slots__ = ("observations", "actions", "rewards", "infos", "extra", "terminated", "truncated")

    def __init__(self, reset_info):
        self.observations: list = []  # normalised; the reset's is appended by the loop
        self.actions: list = []
        self.rewards: list = []
        self.infos: list = [reset_info]
        self.extra: dict = {}
        self.terminated = self.truncated = False

    def episode(self, started: SingleAgentEpisode, obs_space, action_space) -> SingleAgentEpisode:
        """The complete episode, with the id, custom data and start time of ``started`` (the
        episode object the callbacks saw at its reset)."""
        ep = SingleAgentEpisode(
            id_=started.id_,
            observations=self.observations,
            observation_space=obs_space,
            infos=self.infos,
            actions=self.actions,
            action_space=action_space,
            rewards=self.rewards,
            terminated=self.terminated,
            truncated=self.truncated,
            extra_model_outputs=self.extra,
            len_lookback_buffer=0,
        )
        ep.custom_data.update(started.custom_data)
        ep._start_time = started._start_time
        ep._last_step_time = time.perf_counter()
        return ep


def _overrides_on_episode_step(callbacks, config) -> bool:
    """Whether any callback of the runner does something on every env step."""
    if getattr(config, "callbacks_on_episode_step", None):
        return True
    objects = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
    return any(
        getattr(type(c), "on_episode_step", RLlibCallback.on_episode_step)
        is not RLlibCallback.on_episode_step
        for c in objects
        if c is not None
    )
