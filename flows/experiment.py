"""One run recorded as a DVC experiment that leaves the champion alone: a sweep's combination,
or a run in its own clone on any worker.

The stages, artifacts and experiment are those of :func:`flows.pipeline.run_pipeline`; what
differs from ``rnnflow_pipeline``:

* no promotion gate: a sweep gates its best run only (:mod:`flows.sweep`), and a clone's
  ``champion/`` would vanish with the clone;
* the experiment always gets a name (default ``rnnflow-<UTC time>``) and replaces one of the
  same name on the same baseline: sweep names stand for their parameters, so a repeated
  combination is the same experiment;
* ``share=True`` (set by the ``rnnflow-clone`` deployment, whose pull steps ``git_clone`` the
  project into the worker's fresh per-run directory): the run first pulls the outputs of the
  checked-out commit and DVC's run cache from the default DVC remote, every stage restores its
  outputs from there when any worker has computed them already (``dvc repro --pull``), and after
  the stages it pushes the outputs and the run cache to the remote and then the experiment to
  the git remote ``origin`` (``dvc exp push``). Data goes first: a run killed at any point
  leaves no experiment on origin whose outputs are missing from the remote.
"""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import dvcstages, pipeline

FLOW_NAME = "rnnflow-experiment"
GIT_REMOTE = "origin"  # the name `git clone` (and Prefect's git_clone step) gives the cloned repository


@task(name="dvc-pull", task_run_name="dvc-pull", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=30)
def pull_shared(root: str, remote: str) -> str:
    """``dvc pull --run-cache``: the checked-out commit's outputs and every worker's stage runs.

    ``--allow-missing``: a first run meets an empty remote, and outputs nobody pushed are
    simply computed again by their stages.
    """
    logger = get_run_logger()
    result = dvcstages.run_dvc_locked(["pull", "--run-cache", "--allow-missing", "--remote", remote], root,
                                      on_line=logger.info)
    if result.returncode != 0:
        raise RuntimeError(f"dvc pull from remote '{remote}' failed: {result.stdout.strip()[-1000:]}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


@task(name="exp-push", task_run_name="exp-push", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=30)
def push_experiment(root: str, name: str) -> str:
    """``dvc exp push --force origin NAME``: publish the experiment's git ref (its data is on the
    DVC remote already, hence ``--no-cache``; ``--force`` replaces a rerun combination's)."""
    logger = get_run_logger()
    result = dvcstages.run_dvc_locked(["exp", "push", "--force", "--no-cache", GIT_REMOTE, name], root, on_line=logger.info)
    if result.returncode != 0:
        raise RuntimeError(f"dvc exp push of '{name}' to git remote '{GIT_REMOTE}' failed: {result.stdout.strip()[-1000:]}")
    return name


@flow(name=FLOW_NAME, flow_run_name=pipeline.run_name, description="rnnflow stages saved as a DVC experiment, no promotion; with share: pulled from "
                                  "and pushed to the DVC remote and origin (a run in its own clone)")
def rnnflow_experiment(overrides: dict[str, Any] | None = None, experiment: str | None = None,
                       share: bool = False) -> dict[str, Any]:
    """Run every stage with ``overrides`` and save the result as DVC experiment ``experiment``.

    Args:
        overrides: parameter overrides (Hydra syntax, as ``dvc exp run -S``).
        experiment: the experiment's name (default ``rnnflow-<UTC time>``); replaces an
            experiment of that name on the same baseline.
        share: pull from the default DVC remote before, push outputs, run cache and the
            experiment (to git remote ``origin``) after: for a run in its own clone.
    """
    root = dvcstages.find_root()
    name = experiment or pipeline.default_experiment_name()
    with dvcstages.run_lock(root, timeout=pipeline.lock_timeout(), holder=pipeline.lock_holder()):
        remote = dvcstages.default_remote(root, needed_by="share=True (the rnnflow-clone deployment)") if share else None
        if remote:
            pull_shared.submit(str(root), remote).result()
        summary = pipeline.run_pipeline(root, overrides, name, promote=False, replace=True, pull=share)
        if remote:
            pipeline.push_outputs.submit(str(root), remote, run_cache=True).result()
            push_experiment.submit(str(root), name).result()
    return {**summary, "shared": remote}
