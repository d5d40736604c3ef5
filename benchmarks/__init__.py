"""The speed harness of mrpo_rllib: not part of the installed package, run from the
repository root as modules (``python -m benchmarks.bench``, ``python -m benchmarks.steady``,
``python -m benchmarks.bench_envs``) or through ``make bench``, ``make bench-steady``,
``make env-bench``. See docs/benchmarks.md."""
