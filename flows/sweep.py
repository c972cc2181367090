"""Parameter sweeps: one rnnflow run per combination of a grid, one comparison table, the
promotion gate on the best run only.

    python -m flows.sweep --grid train.text_classification.model=gru,lstm \\
                          --grid train.text_classification.units=64,128 \\
                          [--deployment rnnflow-clone] [--max-parallel 4]

Each ``--grid KEY=V1,V2,...`` names a dotted ``params.yaml`` key and its values; the grid is
expanded by DVC's own sweep code, so the syntax is ``dvc exp run -S``'s (Hydra: ``range(1,4)``,
``+new.key=...``, quoted commas). Each combination is recorded as a DVC experiment named after
its parameters (:func:`experiment_name`), so an identical repeated sweep replaces its own
experiments and DVC restores or skips every stage: it trains nothing.

* Without ``--deployment``: the combinations run one after another in this checkout, each a
  ``rnnflow-experiment`` subflow (as ``dvc exp run`` would, the workspace changes with each).
* With ``--deployment NAME`` (``rnnflow-clone``, or ``FLOW/DEPLOYMENT``): one flow run per
  combination through Prefect's ``run_deployment``, at most ``--max-parallel`` waiting at once
  (Prefect's thread-pool task runner); workers run them, each in its own clone, and push their
  experiments to origin and their outputs to the DVC remote.

Then the ``rnnflow-sweep`` table artifact lists every combination, best first by
``promote.metric`` (higher is better, as the gate reads it), failed runs last with their state.
A failed combination never stops the others. Finally the best run alone goes to the promotion
gate: its experiment is brought into this checkout (``dvc exp pull origin`` when it ran on a
worker, then ``dvc exp apply``, so the checkout holds the best combination afterwards) and the
gate compares it with this checkout's champion. A sweep therefore never promotes a worse model
than its best, nor one worse than the champion.

Exit status 0 when every combination completed, 1 otherwise (the table says which failed).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows import dvcstages, experiment, pipeline, reports
from flows.promote import _number as metric_number
from flows.promote import promote_params
from tasks.core.common import load_params

FLOW_NAME = "rnnflow-sweep"
ARTIFACT_KEY = "rnnflow-sweep"
# Shown beside promote.metric and its floors when a run reports them (classifiers, language models).
HEADLINE_METRICS = ("accuracy", "macro_f1", "minority_f1", "roc_auc", "perplexity")
POLL_SECONDS = 2  # how often a waiting combination asks the server whether its flow run ended


# ---------------------------------------------------------------------------------------
# Pure parts: the grid, the names, the ranking


def combinations(grid: list[str]) -> list[dict[str, str]]:
    """``["a.b=1,2", "c=x,y"]`` -> one ``{key: value}`` per combination, expanded as ``dvc exp run -S`` does."""
    from dvc.utils.hydra import get_hydra_sweeps

    for item in grid:
        if "=" not in item or not item.partition("=")[0].strip():
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. train.text_classification.units=64,128")
    try:
        sweeps = get_hydra_sweeps({pipeline.PARAMS_FILE: list(grid)})
    except Exception as error:  # Hydra's parser errors carry the position of the bad character
        raise ValueError(f"--grid {' '.join(grid)}: {str(error).splitlines()[0]}") from None
    return [dict(override.split("=", 1) for override in sweep[pipeline.PARAMS_FILE]) for sweep in sweeps]


def experiment_name(overrides: dict[str, str]) -> str:
    """A DVC experiment name that stands for ``overrides``: the same for the same overrides (in
    any order), so a repeated combination finds and replaces its own experiment; readable, e.g.
    ``sweep-modelgru-units64-1f0c2a9e`` (the last part of each key, its value, a short hash)."""
    digest = hashlib.sha256(json.dumps(sorted(overrides.items())).encode()).hexdigest()[:8]
    readable = "-".join(re.sub(r"[^A-Za-z0-9_]", "", f"{key.rsplit('.', 1)[-1]}{value}") for key, value in overrides.items())
    return f"sweep-{readable[:48].strip('-')}-{digest}" if readable.strip("-") else f"sweep-{digest}"


@dataclass
class Outcome:
    """One combination's run, as the comparison table shows it."""

    experiment: str
    overrides: dict[str, str]
    state: str  # the flow run's final state name: Completed, Failed, Crashed, ...
    completed: bool
    flow_run: str  # a link to the run in the Prefect UI, or its id
    metrics: dict[str, Any] = field(default_factory=dict)


def ranked(outcomes: list[Outcome], metric: str) -> list[Outcome]:
    """Best first by ``metric`` (higher is better, as the promotion gate reads it); completed runs
    without the metric next; runs that did not complete last; submission order within ties."""
    def key(item: tuple[int, Outcome]) -> tuple[int, float, int]:
        index, outcome = item
        value = metric_number(outcome.metrics.get(metric))
        group = 0 if outcome.completed and value is not None else 1 if outcome.completed else 2
        return group, -(value or 0.0), index

    return [outcome for _, outcome in sorted(enumerate(outcomes), key=key)]


def gate_candidate(ordered: list[Outcome], metric: str) -> Outcome | None:
    """The one run the promotion gate considers: the best completed one with a value of ``metric``."""
    best = ordered[0] if ordered else None
    return best if best and best.completed and metric_number(best.metrics.get(metric)) is not None else None


def metric_columns(outcomes: list[Outcome], promote: dict[str, Any]) -> list[str]:
    """promote.metric, the metrics with floors, then the headline metrics any run reports."""
    reported = {name for outcome in outcomes for name in outcome.metrics}
    wanted = [promote["metric"], *promote["floors"], *(name for name in HEADLINE_METRICS if name in reported)]
    return list(dict.fromkeys(wanted))


def comparison_table(ordered: list[Outcome], columns: list[str]) -> list[dict[str, Any]]:
    """One row per run, in ``ordered``'s order: its params, the ``columns`` metrics, state and link."""
    return [
        {"rank": rank, "experiment": outcome.experiment, "state": outcome.state, **outcome.overrides,
         **{name: outcome.metrics.get(name) for name in columns}, "flow_run": outcome.flow_run}
        for rank, outcome in enumerate(ordered, start=1)
    ]


def deployment_name(name: str) -> str:
    """``rnnflow-clone`` -> ``rnnflow-experiment/rnnflow-clone`` (Prefect names deployments FLOW/NAME)."""
    return name if "/" in name else f"{experiment.FLOW_NAME}/{name}"


# ---------------------------------------------------------------------------------------
# Prefect side


def check_deployment(name: str) -> None:
    """Fail before submitting anything when the server has no deployment ``name``."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise ValueError(f"no deployment {name!r} on {PREFECT_API_URL.value() or 'the ephemeral Prefect API'}: "
                             "deploy it first (prefect --no-prompt deploy --name rnnflow-clone, see README)") from None


def outcome_of(flow_run_id: str, overrides: dict[str, str], name: str) -> Outcome:
    """The finished run's state and its test metrics (its ``rnnflow-metrics`` artifact)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.utilities.urls import url_for

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]), key=ArtifactFilterKey(any_=[reports.KEYS["metrics"]])))
    newest = max(found, key=lambda artifact: artifact.created, default=None)
    rows = (json.loads(newest.data) if isinstance(newest.data, str) else newest.data) if newest else []
    completed = bool(run.state and run.state.is_completed())
    return Outcome(name, overrides, run.state_name or "unknown", completed, url_for(run) or str(run.id),
                   {row["metric"]: row["this_run"] for row in rows} if completed else {})


@task(name="run-on-deployment", task_run_name="{experiment_name}", cache_policy=NO_CACHE, persist_result=False)
def run_on_deployment(deployment: str, overrides: dict[str, str], experiment_name: str) -> str:
    """One combination as a flow run of ``deployment``; waits for it to end and returns its id
    (a failed run is an outcome to report, not an error of this task). The run waits in the
    queue as ``experiment_name``; its flow renames it when it starts (:func:`flows.pipeline.run_name`:
    dataset, kind, the combination, the clone's commit)."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(deployment, parameters={"overrides": overrides, "experiment": experiment_name},
                              flow_run_name=experiment_name, poll_interval=POLL_SECONDS)
    return str(flow_run.id)


@task(name="apply-best", task_run_name="apply-best", cache_policy=NO_CACHE, persist_result=False, tags=["champion"])
def apply_best(root: str, name: str, from_origin: bool) -> str:
    """Bring experiment ``name`` into this checkout for the gate: ``dvc exp pull origin`` (git ref
    and cached outputs) when a worker ran it, then ``dvc exp apply``."""
    logger = get_run_logger()
    steps = [["exp", "pull", "--force", experiment.GIT_REMOTE, name]] if from_origin else []
    for args in [*steps, ["exp", "apply", name]]:
        result = dvcstages.run_dvc_locked(args, root, on_line=logger.info)
        if result.returncode != 0:
            raise RuntimeError(f"dvc {' '.join(args)} failed: {result.stdout.strip()[-1000:]}")
    return name


@flow(name=FLOW_NAME, description="rnnflow parameter sweep: one run per grid combination, a comparison table, "
                                  "the promotion gate on the best run")
def rnnflow_sweep(grid: list[str], deployment: str | None = None) -> dict[str, Any]:
    """Run every combination of ``grid`` (locally, or on ``deployment``), compare, gate the best.

    Args:
        grid: ``KEY=V1,V2,...`` items, as ``--grid`` takes them.
        deployment: run the combinations as flow runs of this deployment (e.g. ``rnnflow-clone``);
            None runs them one after another in this checkout.
    """
    logger = get_run_logger()
    root = dvcstages.find_root()
    promote = promote_params(load_params(path=root / pipeline.PARAMS_FILE))  # the whole file checked, as the stages do
    combos = combinations(grid)
    names = [experiment_name(combo) for combo in combos]
    logger.info(f"{len(combos)} combination(s) on {deployment or f'this checkout ({root})'}: {names}")

    if deployment:
        target = deployment_name(deployment)
        check_deployment(target)
        futures = [run_on_deployment.submit(target, combo, name) for combo, name in zip(combos, names)]
        run_ids = [future.result() for future in futures]
    else:
        run_ids = []
        for combo, name in zip(combos, names):
            state = experiment.rnnflow_experiment(overrides=combo, experiment=name, return_state=True)
            run_ids.append(str(state.state_details.flow_run_id))

    ordered = ranked([outcome_of(run_id, combo, name) for run_id, combo, name in zip(run_ids, combos, names)],
                     promote["metric"])
    table = comparison_table(ordered, metric_columns(ordered, promote))
    create_table_artifact(table, key=ARTIFACT_KEY,
                          description=f"Sweep of {' '.join(grid)}: best first by {promote['metric']}, failed runs last")
    failed = [outcome.experiment for outcome in ordered if not outcome.completed]
    if failed:
        logger.warning(f"{len(failed)} of {len(ordered)} combination(s) did not complete: {failed}")

    best = gate_candidate(ordered, promote["metric"])
    decision = None
    if best is None:
        logger.warning(f"no completed run reports {promote['metric']}: the champion stays as it is")
    else:
        with dvcstages.run_lock(root, timeout=pipeline.lock_timeout(), holder=pipeline.lock_holder()):
            applied = apply_best.submit(str(root), best.experiment, bool(deployment))
            decision = pipeline.promote_model.submit(str(root), best.experiment, wait_for=[applied]).result()
    return {"runs": [asdict(outcome) for outcome in ordered], "table": table, "best": best and best.experiment,
            "champion": decision}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                        help="a params.yaml key and its values, e.g. train.text_classification.units=64,128; repeatable")
    parser.add_argument("--deployment", help="run each combination as a flow run of this deployment "
                                             "(e.g. rnnflow-clone); default: one after another in this checkout")
    parser.add_argument("--max-parallel", type=int, default=4, metavar="N",
                        help="with --deployment: at most N combinations in flight at once (default 4)")
    args = parser.parse_args(argv)
    if args.max_parallel < 1:
        parser.error("--max-parallel must be at least 1")
    try:
        combinations(args.grid)
    except ValueError as error:
        parser.error(str(error))
    sweep = rnnflow_sweep.with_options(task_runner=ThreadPoolTaskRunner(max_workers=args.max_parallel))
    state = sweep(grid=args.grid, deployment=args.deployment, return_state=True)
    summary = pipeline.finished_summary(state, "sweep flow run")
    if summary is None:
        return 1
    for row in summary["table"]:
        print("  " + "  ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                               for key, value in row.items()))
    if summary["champion"]:
        decision = summary["champion"]
        print(f"  champion: {'promoted' if decision['promoted'] else 'unchanged'} ({decision['reason']})")
    return 0 if all(run["completed"] for run in summary["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
