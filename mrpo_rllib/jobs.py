"""``mrpo tune`` against a cluster's dashboard: the sweep submitted as a Ray job.

With ``RAY_ADDRESS=http://<dashboard>`` (after ``ray dashboard cluster/aws.yaml``, the
head's dashboard tunnelled to http://127.0.0.1:8265), ``mrpo tune FILE`` does not run the
sweep in the laptop's process: it uploads the working directory (the repository, without
``.venv``, results and ``.git``) and submits ``python -m mrpo_rllib.cli tune FILE ...`` as a
Ray job through Ray's Jobs API, streams the job's log, and returns its outcome. The job's
driver runs on the head with the uploaded code; the trials run on the workers; the job, its
trials and the MRPO gauges show in the dashboard.

Authentication: a cluster started with ``RAY_AUTH_MODE=token`` refuses requests without its
token. Ray's client sends it when ``RAY_AUTH_MODE=token`` is set here and the token is found
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``); a refusal is
reported as a clear error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import time

# Never uploaded with the job: the environment, results, caches, git's objects.
EXCLUDES = [".venv", "results", ".git", "**/__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"]
AGENT_WAIT_S = 120  # how long to wait for a freshly started head's job agent


def job_entrypoint(
    file: str,
    overrides: list[str] | None,
    storage: str | None,
    resume: bool,
    loggers: list[str] | None = None,
) -> str:
    """The job's command: :func:`job_main` run from the uploaded working directory."""
    argv = ["python", "-m", "mrpo_rllib.jobs", file]
    for item in overrides or []:
        argv += ["--set", item]
    for name in loggers or []:
        argv += ["--logger", name]
    if storage:
        argv += ["--storage", storage]
    if resume:
        argv.append("--resume")
    return shlex.join(argv)


def submit_sweep(
    file: str,
    overrides: list[str] | None = None,
    storage: str | None = None,
    resume: bool = False,
    loggers: list[str] | None = None,
    address: str | None = None,
    working_dir: str = ".",
    echo=print,
) -> int:
    """Submit the sweep of ``file`` to the dashboard at ``address`` (default ``RAY_ADDRESS``),
    stream its log, and return 0 when the job succeeded, 1 otherwise. The file is validated
    here first, so a bad file never reaches the cluster."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    from mrpo_rllib.experiments import load_experiment

    load_experiment(file, overrides)  # raises ValueError naming the file, key and value
    if not storage or ("://" not in storage and not os.path.isabs(storage)):
        raise ValueError(
            f"--storage {storage!r}: a sweep submitted to a cluster needs storage all its nodes reach, "
            "as a URI (s3://bucket/mrpo) or an absolute path on a shared file system"
        )
    if not os.path.isfile(os.path.join(working_dir, file)):
        raise ValueError(f"{file}: the experiment file must lie inside the working directory {working_dir!r}")
    address = address or os.environ["RAY_ADDRESS"]
    for name in ("ray", "ray._private.runtime_env", "ray.dashboard"):  # the packaging notices
        logging.getLogger(name).setLevel(logging.WARNING)
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            client = JobSubmissionClient(address)
            job_id = client.submit_job(
                entrypoint=job_entrypoint(file, overrides, storage, resume, loggers),
                runtime_env={"working_dir": working_dir, "excludes": EXCLUDES},
            )
            break
        except (AuthenticationError, RuntimeError, ConnectionError) as e:
            # a head that has just started may have no job agent yet: wait for it
            if "No available agent" in str(e) and time.monotonic() < deadline:
                time.sleep(2.0)
                continue
            raise ValueError(f"submitting to {address} failed: {e}") from None
    echo(f"submitted job {job_id} to {address}; its log follows")

    async def follow():
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    asyncio.run(follow())
    status = str(client.get_job_status(job_id))
    status = status.rsplit(".", 1)[-1]  # JobStatus.SUCCEEDED -> SUCCEEDED
    echo(f"job {job_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1


def job_main(argv: list[str] | None = None) -> int:
    """The driver of a submitted sweep (on the head, in the uploaded working directory).

    It reads the experiment file, then leaves the working directory before running the sweep:
    Ray 2.60's working_dir plugin unpacks the job's package again (``overwrite=True``, deleting
    the old copy) whenever a worker on the node sets up the job's runtime environment, which
    leaves a driver that stays inside it without a current directory (Tune's final
    ``os.path.relpath`` then fails). The code itself stays importable: ``python -m`` put the
    directory's absolute path on ``sys.path``, and the new copy has the same contents.
    """
    import argparse
    import tempfile

    from mrpo_rllib.experiments import load_experiment
    from mrpo_rllib.sweep import run_sweep

    p = argparse.ArgumentParser(prog="python -m mrpo_rllib.jobs")
    p.add_argument("file")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--storage", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--logger", action="append", default=[])
    args = p.parse_args(argv)
    exp = load_experiment(args.file, args.set)
    os.chdir(tempfile.gettempdir())
    command = ["mrpo", "tune", args.file, *(f"--set={s}" for s in args.set)]
    command += [f"--logger={name}" for name in args.logger]
    results = run_sweep(exp, args.storage, resume=args.resume, loggers=args.logger, argv=command)
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(job_main())
