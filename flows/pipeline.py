"""The rnnflow pipeline as a Prefect flow: one task per DVC stage of ``dvc.yaml``.

DVC stays the one DAG and the one cache. The flow reads the stage list from ``dvc.yaml``
(file order; see :func:`flows.dvcstages.stage_order`) and runs each stage as a Prefect task
that drives ``dvc repro --single-item <stage>`` in a subprocess. Prefect's own task caching
is off (``NO_CACHE``): whether a stage runs is DVC's decision alone, and each task shows
what DVC did:

* the task run is renamed ``<stage> (ran)``, ``<stage> (skipped)`` (nothing it depends on
  changed) or ``<stage> (restored)`` (DVC's run cache had the outputs), and its final state
  is ``Completed``, ``Skipped`` or ``Restored`` (all of type COMPLETED), with a message
  giving the duration and the md5 of each output from ``dvc.lock``;
* the task's return value: ``{"stage", "outcome", "seconds", "outs"}``.

Parameter overrides and experiments. ``dvc exp run`` runs the whole pipeline in one
command, which would hide the per-stage tasks, so the flow does what it does in three
visible steps: the ``set-params`` task applies the overrides to ``params.yaml`` with DVC's
own ``--set-param`` code (Hydra override grammar, so ``train.text_classification.epochs=3``, ``+promote.metric=roc_auc``
and lists behave exactly as in ``dvc exp run -S``); the stage tasks run; the
``save-experiment`` task records the result with ``dvc exp save --name NAME`` (including
dvc.lock and the uncached metrics/plots). As with ``dvc exp run``, the workspace keeps the
experiment's params and outputs afterwards; ``dvc exp show`` compares, ``dvc exp apply
NAME`` / ``dvc exp branch NAME BRANCH`` bring an experiment back. The experiment name is a
flow parameter (default ``rnnflow-<UTC time>``), returned and shown as an artifact.

One run per checkout. A run holds an flock on ``.dvc/tmp/rnnflow-run.lock`` for its whole
duration (waiting up to ``RNNFLOW_LOCK_TIMEOUT`` seconds, default 60) and each stage also
needs DVC's repository lock; a second run fails with :class:`~flows.dvcstages.CheckoutBusy`
saying another run holds the checkout, before it writes anything. Stages write their outputs
atomically, so a failed or cancelled run never leaves a half-written output.

Run it once: ``python -m flows.pipeline [--set train.text_classification.epochs=3 ...] [--name NAME] [--push]``
(against ``PREFECT_API_URL`` if set, else Prefect's ephemeral mode). Schedule it:
``prefect.yaml`` (deployment ``rnnflow-nightly``) or ``python -m flows.serve``.

What a reviewer sees in the Prefect UI: each run is named for what ran (:func:`run_name`:
dataset, kind, overrides, commit); the artifacts inline every figure the stages drew and link
the Data Docs and the evaluation report on the read-only reports site (:mod:`flows.reportsite`),
only when it answers; a failed or crashed ``rnnflow-nightly`` run raises the automation that
:mod:`flows.alerts` creates.

More machines: :func:`run_pipeline` is the part every flow shares; ``flows/experiment.py``
runs it in a clone of its own on any worker (deployment ``rnnflow-clone``) and
``flows/sweep.py`` runs one such run per combination of a parameter grid.
"""
import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.runtime import deployment as runtime_deployment
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Completed

from flows import dvcstages, reports, reportsite
from flows import promote as gate
from tasks.core import artifacts
from tasks.core.common import load_params
from tasks.core.schema import task_kind

FLOW_NAME = "rnnflow-pipeline"
STAGE_TAG = "dvc-stage"
PARAMS_FILE = "params.yaml"
STATE_NAMES = {dvcstages.RAN: "Completed", dvcstages.SKIPPED: "Skipped", dvcstages.RESTORED: "Restored",
               dvcstages.UNKNOWN: "Completed"}
OUTCOME_WORDS = {dvcstages.RAN: "ran the stage", dvcstages.SKIPPED: "skipped the stage (nothing changed)",
                 dvcstages.RESTORED: "restored the outputs from its run cache",
                 dvcstages.UNKNOWN: "finished (outcome not reported)"}


def _retry_transient(task, task_run, state) -> bool:
    """Retry ingest only for errors worth retrying: a source that could not be reached."""
    try:
        state.result()
    except dvcstages.StageFailed as error:
        return error.transient
    except dvcstages.CheckoutBusy:
        return False
    except Exception:
        return True
    return False


# Per-stage task options, keyed by dvc.yaml stage name (tests/test_flow_matches_dvc.py checks
# every key is a stage). Validation failures are never retried; `gpu` lets a Prefect tag
# concurrency limit (`prefect concurrency-limit create gpu 1`) keep one training per GPU.
STAGE_OPTIONS: dict[str, dict[str, Any]] = {
    "ingest": {"retries": 2, "retry_delay_seconds": [10, 30], "retry_condition_fn": _retry_transient},
    "validate": {"retries": 0},
    "train": {"tags": ["gpu"]},
}


# ---------------------------------------------------------------------------------------
# What a stage task shows besides its state: artifacts built from the stage's outputs


class StageReporter:
    """Hooks around one stage's `dvc repro`; failures to publish never fail the stage."""

    def __init__(self, root: Path, logger):
        self.root = root
        self.logger = logger

    def poll(self) -> None:
        """Called about once a second while DVC runs."""

    def finished(self, outcome: str) -> None:
        """Called after DVC succeeded."""

    def failed(self, error: Exception) -> None:
        """Called after DVC failed."""

    def _safely(self, action, *args, **kwargs):
        try:
            return action(*args, **kwargs)
        except Exception as error:  # the UI is a view; the pipeline's result must not depend on it
            self.logger.warning(f"could not publish a report: {type(error).__name__}: {error}")
            return None

    def guarded(self, hook):
        """``hook`` wrapped so that an error in a report never fails or stops the stage."""
        return lambda *args: self._safely(hook, *args)


def site_links(*links: tuple[str, str | None]) -> list[str]:
    """:func:`reports.site_link` for each ``(text, path on the reports site)``; the site is probed
    once, at the first path (every path was published just before)."""
    urls = [(text, f"{reportsite.base_url()}/{relative}" if relative else None) for text, relative in links]
    probe = next((url for _, url in urls if url), None)
    served = bool(probe) and reportsite.reachable(probe)
    return [reports.site_link(text, url, served) for text, url in urls]


def publish_figures(root: Path, directory: Path, title: str, key: str, description: str, links: list[str] = ()) -> None:
    """Every PNG the stages wrote in ``directory`` (relative to ``root``), inlined in one markdown artifact."""
    figures = sorted(path.relative_to(root) for path in (root / directory).glob("*.png"))
    if figures:
        create_markdown_artifact(reports.figures_markdown(title, figures, root, links), key=key, description=description)


class ValidationReporter(StageReporter):
    """Validation summary (expectations, quarantine, Data Docs link), class balance, EDA figures."""

    def finished(self, outcome: str) -> None:
        summary = reports.read_json(self.root / artifacts.VALIDATION_SUMMARY)
        if summary:
            docs = self._safely(reportsite.publish_data_docs, self.root, reportsite.site_dir(self.root)) or {}
            links = site_links(("Great Expectations Data Docs", docs.pop("index", None)),
                               *((f"`{suite}` results", page) for suite, page in docs.items()))
            create_markdown_artifact(reports.validation_markdown(summary, OUTCOME_WORDS[outcome], links),
                                     key=reports.KEYS["validation"],
                                     description="Great Expectations validation of the ingested reviews")
        if (self.root / reports.CLASS_COUNTS).exists():
            create_table_artifact(reports.class_balance_table(self.root / reports.CLASS_COUNTS),
                                  key=reports.KEYS["class_balance"],
                                  description="Class balance of the validated data (reports/eda)")
        self._safely(publish_figures, self.root, artifacts.EDA_DIR, "Data: EDA figures", reports.KEYS["eda_figures"],
                     "The validate stage's figures of the validated data (reports/eda)")

    def failed(self, error: Exception) -> None:
        create_markdown_artifact(reports.validation_failed_markdown(str(error)),
                                 key=reports.KEYS["validation"], description="Validation stopped the pipeline")


class TrainProgress(StageReporter):
    """A progress artifact, "epoch n of N" with the validation metrics, from the train stage's
    ``checkpoints/progress.json`` (written after each epoch) while the stage runs."""

    def __init__(self, root: Path, logger):
        super().__init__(root, logger)
        self.path = root / artifacts.PROGRESS_FILE
        self.started_ns = time.time_ns()
        self.epoch = None
        self.percent = 0.0
        self.text = "waiting for the first epoch"
        self.artifact = self._safely(create_progress_artifact, 0.0, key=reports.KEYS["progress"],
                                     description=f"train: {self.text}")

    def _update(self, percent: float, text: str) -> None:
        self.percent, self.text = percent, text
        if self.artifact:
            self._safely(update_progress_artifact, self.artifact, percent, description=f"train: {text}")

    def poll(self) -> None:
        try:
            if self.path.stat().st_mtime_ns < self.started_ns:  # left by an earlier run
                return
        except FileNotFoundError:
            return
        progress = reports.read_json(self.path)  # None while the stage is mid-write
        if not progress or progress.get("epoch") == self.epoch:
            return
        self.epoch = progress.get("epoch")
        epochs = max(int(progress.get("epochs") or 1), 1)
        text = reports.progress_text(progress)
        self.logger.info(f"train: {text}")
        self._update(min(100.0, 100.0 * int(self.epoch or 0) / epochs), text)

    def finished(self, outcome: str) -> None:
        if outcome == dvcstages.RAN:
            self.poll()
            self._update(100.0, f"done ({self.text})")
        else:
            self._update(100.0, f"DVC {OUTCOME_WORDS[outcome]}: the model is up to date")

    def failed(self, error: Exception) -> None:
        self._update(self.percent, f"failed at {self.text}: {str(error)[:300]}")


REPORTERS: dict[str, type[StageReporter]] = {"validate": ValidationReporter, "train": TrainProgress}


# ---------------------------------------------------------------------------------------
# Tasks


def _rename_task_run(name: str) -> None:
    """Rename the running task run (the engine sends the new name with its final state)."""
    context = TaskRunContext.get()
    if context and context.task_run:
        context.task_run.name = name


@task(cache_policy=NO_CACHE, persist_result=False)
def dvc_stage(stage: str, root: str, pull: bool = False):
    """Reproduce one DVC stage (``dvc repro --single-item``, ``--pull`` if ``pull``) and report what DVC did."""
    logger = get_run_logger()
    path = Path(root)
    reporter = REPORTERS.get(stage, StageReporter)(path, logger)
    started = time.monotonic()
    try:
        outcome = dvcstages.repro_stage(stage, path, pull=pull, on_line=logger.info, poll=reporter.guarded(reporter.poll))
    except Exception as error:
        reporter.guarded(reporter.failed)(error)
        _rename_task_run(f"{stage} (failed)")
        raise
    seconds = round(time.monotonic() - started, 2)
    outs = dvcstages.lock_outs(path, stage)[stage]
    reporter.guarded(reporter.finished)(outcome)
    _rename_task_run(f"{stage} ({outcome})")
    hashes = ", ".join(f"{out}={md5}" for out, md5 in outs.items()) or "no outputs"
    message = f"DVC {OUTCOME_WORDS[outcome]} in {seconds:.1f} s; {hashes}"
    logger.info(message)
    return Completed(name=STATE_NAMES[outcome], message=message,
                     data={"stage": stage, "outcome": outcome, "seconds": seconds, "outs": outs})


def stage_task(stage: str):
    """The Prefect task that runs ``stage``: :func:`dvc_stage` with the stage's options."""
    options = dict(STAGE_OPTIONS.get(stage, {}))
    tags = [STAGE_TAG, *options.pop("tags", [])]
    return dvc_stage.with_options(name=stage, task_run_name=stage, tags=tags, **options)


def plan(root: str | Path) -> list[tuple[str, Any]]:
    """``[(stage, task)]`` for every stage of ``dvc.yaml``, in the order the flow runs them."""
    order = dvcstages.stage_order(root)
    stale = sorted((set(STAGE_OPTIONS) | set(REPORTERS)) - set(order))
    if stale:
        raise ValueError(f"flows/pipeline.py configures stage(s) {stale} that dvc.yaml does not have (stages: {order})")
    return [(stage, stage_task(stage)) for stage in order]


def to_hydra_overrides(overrides: dict[str, Any]) -> list[str]:
    """``{"train.text_classification.epochs": 3}`` -> ``["train.text_classification.epochs=3"]``, as ``dvc exp run -S`` takes them.

    Strings pass through as written (Hydra parses ``3`` as a number, ``[a,b]`` as a list);
    other values are written as JSON (``True`` -> ``true``, lists, ``None`` -> ``null``).
    """
    result = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not key.strip() or "=" in key:
            raise ValueError(f"override key {key!r}: expected a dotted parameter name such as train.text_classification.epochs")
        result.append(f"{key.strip()}={value if isinstance(value, str) else json.dumps(value)}")
    return result


def _changes(before: Any, after: Any, prefix: str = "") -> dict[str, list[Any]]:
    """``{dotted.key: [old, new]}`` for every leaf that differs."""
    if isinstance(before, dict) and isinstance(after, dict):
        changed: dict[str, list[Any]] = {}
        for key in [*before, *(k for k in after if k not in before)]:
            changed.update(_changes(before.get(key), after.get(key), f"{prefix}{key}."))
        return changed
    return {} if before == after else {prefix.rstrip("."): [before, after]}


def apply_param_overrides(root: str | Path, overrides: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply ``overrides`` to params.yaml with DVC's ``--set-param`` code, holding DVC's lock;
    return ``{key: [old, new]}`` for what changed."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.utils.hydra import apply_overrides

    path = Path(root) / PARAMS_FILE
    before = yaml.safe_load(path.read_text()) or {}
    hydra = to_hydra_overrides(overrides)
    try:
        with Repo(str(root)) as repo, repo.lock:  # nobody else's `dvc repro` reads params.yaml mid-write
            apply_overrides(path, hydra)
    except DvcException as error:
        if any(message in str(error) for message in dvcstages.DVC_LOCK_MESSAGES):
            raise dvcstages.CheckoutBusy(f"another run holds the DVC lock on {root}; params.yaml was not changed") from None
        cause = f": {error.__cause__}" if error.__cause__ else ""
        raise ValueError(f"cannot apply overrides {hydra} to {PARAMS_FILE}{cause}") from None
    return _changes(before, yaml.safe_load(path.read_text()) or {})


@task(name="set-params", task_run_name="set-params", cache_policy=NO_CACHE, persist_result=False, tags=["experiment"])
def set_params(root: str, overrides: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply the run's parameter overrides to params.yaml (as `dvc exp run -S` does)."""
    changed = apply_param_overrides(root, overrides)
    get_run_logger().info(f"params.yaml overrides: {changed or 'no change'}")
    return changed


def _experiment_commit(root: str | Path, name: str) -> tuple[str, str]:
    """(ref, commit) of the DVC experiment ``name`` on HEAD's baseline ("" when there is none).

    DVC keeps experiments per baseline commit (``refs/exps/<baseline>/<name>``); ``dvc exp apply
    NAME`` looks on HEAD's, and so does this.
    """
    head = dvcstages.git(root, "rev-parse", "HEAD")
    ref = f"refs/exps/{head[:2]}/{head[2:]}/{name}"
    commit = dvcstages.git(root, "rev-parse", "--verify", "--quiet", ref) if head else ""
    return (ref, commit) if commit else ("", "")


@task(name="save-experiment", task_run_name="save-experiment", cache_policy=NO_CACHE, persist_result=False, tags=["experiment"])
def save_experiment(root: str, name: str, changes: dict[str, list[Any]], replace: bool = False) -> dict[str, Any]:
    """Record the workspace (params, dvc.lock, metrics, cached outputs) as DVC experiment ``name``
    (``replace``: in place of an experiment of that name on this baseline)."""
    logger = get_run_logger()
    include = dvcstages.untracked_pipeline_files(root)
    args = ["exp", "save", "--name", name, *(["--force"] if replace else []),
            *(arg for path in include for arg in ("-I", path))]
    result = dvcstages.run_dvc_locked(args, root, on_line=logger.info)
    if result.returncode != 0:
        raise RuntimeError(f"dvc exp save failed: {result.stdout.strip()[-1000:]}")
    ref, commit = _experiment_commit(root, name)
    record = {"name": name, "ref": ref, "commit": commit, "changes": changes, "baseline": dvcstages.git(root, "rev-parse", "HEAD")}
    lines = [f"# DVC experiment `{name}`", "", f"Saved as `{ref}` (commit `{commit[:12]}`) on top of `{record['baseline'][:12]}`.", "",
             "| parameter | before | this run |", "|---|---|---|"]
    lines += [f"| `{key}` | `{old}` | `{new}` |" for key, (old, new) in changes.items()] or ["| (none changed) | | |"]
    lines += ["", f"Compare: `dvc exp show`; bring it back: `dvc exp apply {name}` or `dvc exp branch {name} <branch>`."]
    try:
        create_markdown_artifact("\n".join(lines), key=reports.KEYS["experiment"], description="DVC experiment of this run")
    except Exception as error:
        logger.warning(f"could not publish the experiment artifact: {error}")
    return record


@task(name="promote", task_run_name="promote", cache_policy=NO_CACHE, persist_result=False, tags=["champion"])
def promote_model(root: str, experiment: str | None, push: bool = False) -> dict[str, Any]:
    """The promotion gate: make this run's model the champion if it beats the current one
    (registered in the model registry; ``push``: its files to the DVC remote, its tags to origin)."""
    logger = get_run_logger()
    path = Path(root)
    params = gate.promote_params(load_params(path=path / PARAMS_FILE))  # the whole file checked, as the stages do
    outs = dvcstages.lock_outs(path)
    model_md5 = next((md5 for stage in outs.values() for out, md5 in stage.items() if out == str(artifacts.MODEL_DIR)), None)
    candidate = {
        "metrics": reports.read_json(path / reports.METRICS) or {},
        "model_md5": model_md5,
        "outs": outs,
        "git_rev": dvcstages.git_revision(path),
        "experiment": experiment,
        "flow_run": str(runtime_flow_run.get_id() or ""),
        "promoted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": params,
    }
    champion = gate.read_champion(path)
    promoted, reason = gate.should_promote(candidate, champion, params)
    if promoted:
        gate.write_champion(path, candidate, artifacts.MODEL_DIR, push=push)
        champion = candidate
    logger.info(f"promotion: {'promoted' if promoted else 'not promoted'}: {reason}")
    decision = {
        "promoted": promoted,
        "reason": reason,
        "metric": params["metric"],
        "path": str(path / gate.CHAMPION_DIR),
        "champion": {key: champion[key] for key in ("model_md5", "metrics", "git_rev", "experiment", "flow_run", "promoted_at")
                     if key in champion} if champion else None,
    }
    try:
        create_markdown_artifact(reports.champion_markdown(decision), key=reports.KEYS["champion"],
                                 description="Which model is champion, and why")
    except Exception as error:
        logger.warning(f"could not publish the champion artifact: {error}")
    return decision


@task(name="dvc-push", task_run_name="dvc-push", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=30)
def push_outputs(root: str, remote: str, run_cache: bool = False) -> dict[str, Any]:
    """``dvc push`` this run's cached outputs to the default remote; with ``run_cache``, also
    DVC's run cache (``--run-cache``), its objects first, so that no entry on the remote ever
    points at outputs that are not there."""
    logger = get_run_logger()
    if run_cache:
        sent = dvcstages.push_run_cache_objects(root, remote)
        logger.info(f"run cache: {sent} object(s) uploaded to '{remote}'")
    result = dvcstages.run_dvc_locked(["push", "--remote", remote, *(["--run-cache"] if run_cache else [])], root,
                                      on_line=logger.info)
    if result.returncode != 0:
        raise RuntimeError(f"dvc push to remote '{remote}' failed: {result.stdout.strip()[-1000:]}")
    return {"remote": remote, "output": result.stdout.strip().splitlines()[-1:] or [""]}


# ---------------------------------------------------------------------------------------
# The flow


def lock_timeout() -> float:
    return float(os.environ.get("RNNFLOW_LOCK_TIMEOUT", "60"))


def lock_holder() -> str:
    """Who holds the checkout, as a run that finds it busy reports it: this flow run."""
    return f"flow run {runtime_flow_run.get_name() or '?'} {runtime_flow_run.get_id() or ''}".strip()


def _publish(logger, publish) -> None:
    """Run ``publish()`` (build and create an artifact); a failure is a warning, not a failed run."""
    try:
        publish()
    except Exception as error:
        logger.warning(f"could not publish a report: {type(error).__name__}: {error}")


def publish_evaluation_figures(root: Path, logger) -> None:
    """The evaluate stage's figures, inlined, with links to the evaluation report on the reports site
    (every plot of dvc.yaml, the training curves too, and the evaluation files)."""
    try:
        published = reportsite.publish_evaluation(root, reportsite.site_dir(root)) or {}
    except Exception as error:  # the figures still show; the links say they are missing
        logger.warning(f"could not publish the evaluation report: {type(error).__name__}: {error}")
        published = {}
    report = published.pop("report", None)
    links = site_links(("Evaluation report: every plot of dvc.yaml, training curves included (dvc plots show, offline)", report),
                       *((f"`{name}`", relative) for name, relative in published.items()))
    publish_figures(root, artifacts.PLOTS_DIR, "Evaluation figures", reports.KEYS["figures"],
                    "The evaluate stage's figures on the test split (plots/evaluate), and the evaluation report", links)


def _short_key(key: str, kind: str | None) -> str:
    """``train.text_classification.epochs`` -> ``train.epochs`` (the kind is in the name already)."""
    return ".".join(part for part in key.split(".") if part != kind)


def describe_run(params: dict[str, Any], overrides: dict[str, Any] | None, git_rev: str, deployment: str | None = None) -> str:
    """A flow run name that says what ran: ``[deployment: ]dataset kind [overrides] @commit``, e.g.
    ``rnnflow-nightly: clothing_reviews text_classification @1a2b3c4`` or
    ``imdb text_classification train.epochs=3 train.units=64 @1a2b3c4+dirty``."""
    overrides = overrides or {}
    ingest = {**(params.get("ingest") or {}),
              **{key.split(".", 1)[1]: value for key, value in overrides.items() if key in ("ingest.dataset", "ingest.kind")}}
    kind = task_kind({"ingest": ingest})
    changes = " ".join(f"{_short_key(key, kind)}={value if isinstance(value, str) else json.dumps(value)}"
                       for key, value in overrides.items())
    commit = f"@{git_rev[:7]}{'+dirty' if git_rev.endswith('+dirty') else ''}" if git_rev else "@no-commit"
    words = [str(ingest.get("dataset") or "?"), kind or "?", changes[:160], commit]
    return (f"{deployment}: " if deployment else "") + " ".join(word for word in words if word)


def run_name() -> str:
    """The running flow's name (Prefect calls this as the run starts): :func:`describe_run` of its
    parameters, this checkout's params.yaml and commit, and the deployment that started it."""
    try:
        root = dvcstages.find_root()
        params = yaml.safe_load((root / PARAMS_FILE).read_text()) or {}
        return describe_run(params, runtime_flow_run.parameters.get("overrides"), dvcstages.git_revision(root),
                            runtime_deployment.name)
    except Exception as error:  # a name is a label: never the reason a run fails
        return f"rnnflow (no name: {type(error).__name__})"


def default_experiment_name() -> str:
    return f"rnnflow-{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}"


def run_pipeline(root: Path, overrides: dict[str, Any] | None, name: str | None, *, promote: bool = True,
                 replace: bool = False, pull: bool = False, push: bool = False) -> dict[str, Any]:
    """What a run does in the checkout ``root``, as tasks of the calling flow (which holds the run lock):
    apply ``overrides``, run every stage, publish the reports, save experiment ``name`` (if any).

    ``promote``: run the promotion gate (a sweep gates its best run only, a clone has no champion).
    ``replace``: replace an experiment of the same name (a sweep's names stand for their params).
    ``pull``: stages restore their outputs from the DVC remote when its run cache has them.
    ``push``: a promoted model's files go to the DVC remote and its registry tags to origin.
    """
    logger = get_run_logger()
    stages = plan(root)
    if name:
        if not dvcstages.git(root, "rev-parse", "HEAD"):
            raise ValueError(f"{root}: a DVC experiment needs a git commit to build on; commit the project first")
        if not replace and _experiment_commit(root, name)[0]:
            raise ValueError(f"a DVC experiment named '{name}' exists already (dvc exp list); choose another name")
    previous = reports.read_json(root / reports.METRICS)
    logger.info(f"checkout {root}: stages {[stage for stage, _ in stages]}; overrides {overrides or 'none'}")

    upstream: list[Any] = []
    changes: dict[str, list[Any]] = {}
    if overrides:
        future = set_params.submit(str(root), overrides)
        changes = future.result()
        upstream = [future]
    results = []
    for stage, stage_runner in stages:
        future = stage_runner.submit(stage, str(root), pull, wait_for=upstream)
        results.append(future.result())  # a failed stage raises here: later stages never start
        upstream = [future]

    metrics = reports.read_json(root / reports.METRICS)
    if metrics:
        _publish(logger, lambda: create_table_artifact(
            reports.metrics_table(metrics, previous), key=reports.KEYS["metrics"],
            description="Test metrics of this run beside the previous run and the majority-class baseline"))
    if (root / reports.CONFUSION).exists():
        _publish(logger, lambda: create_table_artifact(
            reports.confusion_table(root / reports.CONFUSION), key=reports.KEYS["confusion"],
            description="Confusion matrix on the test split"))
    if metrics:
        _publish(logger, lambda: publish_evaluation_figures(root, logger))
    if (root / reports.SAMPLES).exists():
        _publish(logger, lambda: create_markdown_artifact(
            (root / reports.SAMPLES).read_text(encoding="utf-8"), key=reports.KEYS["samples"],
            description="The language model's continuations of the evaluate stage's prompts"))

    saved = None
    if name:
        future = save_experiment.submit(str(root), name, changes, replace, wait_for=upstream)
        saved = future.result()
        upstream = [future]
    decision = promote_model.submit(str(root), name, push, wait_for=upstream).result() if promote else None
    git_rev = dvcstages.git_revision(root)
    _publish(logger, lambda: create_markdown_artifact(
        reports.stages_markdown(results, git_rev, name), key=reports.KEYS["versions"],
        description="Data and model versions (dvc.lock md5s, git revision)"))
    return {
        "flow_run_id": str(runtime_flow_run.get_id() or ""),
        "root": str(root),
        "git_rev": git_rev,
        "stages": results,
        "metrics": metrics,
        "previous_metrics": previous,
        "experiment": saved,
        "champion": decision,
    }


@flow(name=FLOW_NAME, flow_run_name=run_name, description="rnnflow: every stage of dvc.yaml (ingest -> validate -> clean -> tokenize -> "
                                  "baseline/train -> evaluate), driven through DVC")
def rnnflow_pipeline(overrides: dict[str, Any] | None = None, push: bool = False, experiment: str | None = None) -> dict[str, Any]:
    """Run every stage of dvc.yaml through DVC, promote the model if it beats the champion.

    Args:
        overrides: parameter overrides such as ``{"train.text_classification.epochs": 3}`` (Hydra syntax, as
            ``dvc exp run -S``); the run is then saved as a DVC experiment.
        push: ``dvc push`` the outputs to the default DVC remote after a successful run.
        experiment: name of the DVC experiment (default ``rnnflow-<UTC time>`` when there are
            overrides; with a name and no overrides the run is still saved as an experiment).
    """
    root = dvcstages.find_root()
    with dvcstages.run_lock(root, timeout=lock_timeout(), holder=lock_holder()):
        remote = dvcstages.default_remote(root) if push else None  # fail before hours of training
        summary = run_pipeline(root, overrides, experiment or (default_experiment_name() if overrides else None),
                               push=remote is not None)
        pushed = push_outputs.submit(str(root), remote).result() if remote else None
    return {**summary, "pushed": pushed}


def finished_summary(state, what: str) -> dict[str, Any] | None:
    """Print how a flow run ended; its result when it completed, else None (the error printed)."""
    print(f"rnnflow: {what} {state.state_details.flow_run_id} finished in state {state.name}")
    if not state.is_completed():
        print(f"error: {state.message}", file=sys.stderr)
        return None
    return state.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", "-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter as `dvc exp run -S` does (e.g. train.text_classification.epochs=3); repeatable; "
                             "the run is saved as a DVC experiment")
    parser.add_argument("--name", help="DVC experiment name (default rnnflow-<UTC time> when --set is given)")
    parser.add_argument("--push", action="store_true", help="dvc push to the default remote after a successful run")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--set {item!r}: expected KEY=VALUE, e.g. train.text_classification.epochs=3")
        overrides[key.strip()] = value
    state = rnnflow_pipeline(overrides=overrides or None, push=args.push, experiment=args.name, return_state=True)
    summary = finished_summary(state, "flow run")
    if summary is None:
        return 1
    for result in summary["stages"]:
        print(f"  {result['stage']:<10} {result['outcome']:<9} {result['seconds']:7.1f} s")
    print(f"  champion: {'promoted' if summary['champion']['promoted'] else 'unchanged'} ({summary['champion']['reason']})")
    if summary["experiment"]:
        print(f"  experiment: {summary['experiment']['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
