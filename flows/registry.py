"""The model registry: which model version exists and which one is in production, as git tags.

The model is the DVC artifact :data:`ARTIFACT` (``dvc.yaml`` ``artifacts:``: the ``models`` folder,
its card ``models/model.json``). The promotion gate (:mod:`flows.promote`) registers the champion
as a GTO version on the commit whose ``dvc.lock`` produced it and assigns it the stage
:data:`CHAMPION_STAGE`: tags ``rnnflow-model@v0.0.N`` and ``rnnflow-model#prod#K``, which ``gto
show``, ``gto history``, ``dvc artifacts get`` and DVC Studio read. With ``push``, the model's
files go to the default DVC remote first and the tags to git ``origin`` after, so a tag on
origin never names files the remote lacks.

Reading (:class:`RegistrySource`) works on a checkout, a bare repository or a git URL: the
version a stage holds, and its files fetched exactly as ``dvc artifacts get`` fetches them.
No Prefect here: ``python -m tasks.serve --stage`` reads the registry through this module.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from flows import dvcstages
from flows.dvcstages import DVC_LOCK
from tasks.core.artifacts import EVALUATE_METRICS, INGESTED, MODEL_DIR

ARTIFACT = "rnnflow-model"
CHAMPION_STAGE = "prod"


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (no commit holds the model, no version in a stage...)."""


def _model_md5(lock_text: str) -> str | None:
    stages = (yaml.safe_load(lock_text) or {}).get("stages") or {}
    return next((out.get("md5") for body in stages.values() for out in body.get("outs") or []
                 if out.get("path") == str(MODEL_DIR)), None)


def model_commit(root: str | Path, model_md5: str, experiment: str | None = None) -> str | None:
    """The commit whose ``dvc.lock`` records the model ``model_md5``: the run's DVC experiment
    (``experiment``), else HEAD; None when neither does (the run's ``dvc.lock`` is not committed)."""
    candidates = []
    if experiment:
        refs = dvcstages.git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps")
        candidates += [line.split()[0] for line in refs.splitlines() if line.endswith(f"/{experiment}")]
    candidates.append(dvcstages.git(root, "rev-parse", "HEAD"))
    for commit in filter(None, candidates):
        if _model_md5(dvcstages.git(root, "show", f"{commit}:{DVC_LOCK}")) == model_md5:
            return commit
    return None


def save_run(root: str | Path, model_md5: str) -> str:
    """Record the workspace's run (``dvc.lock``, metrics) as the DVC experiment
    ``champion-<md5>`` and return its commit: a run that left no commit (a plain nightly run)
    gets one the registry's tags can point to. The workspace stays as it is."""
    name = f"champion-{model_md5.removesuffix('.dir')[:12]}"
    include = [arg for path in dvcstages.untracked_pipeline_files(root) for arg in ("-I", path)]
    result = dvcstages.run_dvc_locked(["exp", "save", "--force", "--name", name, *include], root)
    commit = model_commit(root, model_md5, name)
    if result.returncode != 0 or not commit:
        raise RegistryError(f"could not save the run as DVC experiment {name}: {result.stdout.strip()[-500:]}")
    return commit


def register_champion(root: str | Path, record: dict[str, Any], push: bool = False) -> dict[str, Any]:
    """Register the champion ``record`` (``model_md5``, ``experiment``, metrics) as a version of
    :data:`ARTIFACT` on its commit, or reuse the version already on that commit (a model promoted
    again), and assign it :data:`CHAMPION_STAGE`. ``push``: ``dvc push`` the model to the default
    remote, then push both tags to ``origin``. Returns ``{"name", "version", "stage", "commit"}``."""
    from gto import api

    model_md5 = record.get("model_md5")
    if not model_md5:
        raise RegistryError(f"the champion record names no model (no {MODEL_DIR} in dvc.lock)")
    commit = model_commit(root, model_md5, record.get("experiment")) or save_run(root, model_md5)
    if push:
        result = dvcstages.run_dvc_locked(["push", str(MODEL_DIR)], root)
        if result.returncode != 0:
            raise RegistryError(f"dvc push {MODEL_DIR} failed: {result.stdout.strip()[-500:]}")
    metric = ", ".join(f"{key} {value:.4f}" for key, value in sorted((record.get("metrics") or {}).items())
                       if key in ("accuracy", "macro_f1", "roc_auc", "perplexity") and isinstance(value, (int, float)))
    version = next((entry["version"] for entry in versions(str(root)) if entry["commit_hexsha"] == commit), None)
    if version is None:
        version = api.register(str(root), ARTIFACT, commit, message=f"champion model {model_md5} ({metric})",
                               push=push).version
    # force: a version back in the stage (a rollback) gets a new assignment tag, the latest wins
    api.assign(str(root), ARTIFACT, CHAMPION_STAGE, version=version, push=push, force=True,
               message=f"promoted by the gate: {metric}")
    return {"name": ARTIFACT, "version": version, "stage": CHAMPION_STAGE, "commit": commit}


def versions(repo: str, name: str = ARTIFACT) -> list[dict[str, Any]]:
    """``gto show NAME``'s versions (each with its ``version``, ``commit_hexsha`` and ``stages``);
    none before the first registration."""
    from gto import api
    from gto.exceptions import ArtifactNotFound

    try:
        return api.show(repo, name)
    except ArtifactNotFound:
        return []


class RegistrySource:
    """The version a registry stage holds, for ``tasks.serve --stage`` (a
    :class:`tasks.serving.slot.ModelSource`). ``repo``: a checkout (a clone fetches its origin's
    tags on every poll), a bare repository or a git URL."""

    def __init__(self, repo: str, stage: str = CHAMPION_STAGE, name: str = ARTIFACT) -> None:
        self.repo, self.stage, self.name = repo, stage, name
        # a clone follows its origin: promotions arrive there as new tags
        self._origin = Path(repo).is_dir() and bool(dvcstages.git(repo, "remote", "get-url", "origin"))
        self._folder = Path(tempfile.mkdtemp(prefix="rnnflow-serve-"))
        self._served: Path | None = None

    def latest(self) -> str:
        """The version the stage holds now (GTO's rule, as ``gto which``: the latest assignment)."""
        from gto import api
        from gto.exceptions import ArtifactNotFound

        if self._origin:
            dvcstages.git(self.repo, "fetch", "--quiet", "--tags", "origin")  # unreachable: the tags it has
        try:
            found = api.find_versions_in_stage(self.repo, self.name, self.stage)
        except ArtifactNotFound:
            found = None
        if not found:
            raise RegistryError(f"{self.repo}: no version of {self.name} is in stage '{self.stage}' (gto show {self.name})")
        return (found[0] if isinstance(found, list) else found).version

    def materialize(self, key: str) -> tuple[Path, dict[str, Any]]:
        """Version ``key``'s files, fetched as ``dvc artifacts get`` fetches them (from the DVC
        remote the repository configures), and its metrics and data versions from its commit."""
        import dvc.api
        from dvc.repo.artifacts import Artifacts

        commit = next(entry["commit_hexsha"] for entry in versions(self.repo, self.name) if entry["version"] == key)
        target = self._folder / key
        shutil.rmtree(target, ignore_errors=True)
        Artifacts.get(self.repo, self.name, version=key, out=str(target))
        metrics = json.loads(dvc.api.read(str(EVALUATE_METRICS), repo=self.repo, rev=commit))
        lock = yaml.safe_load(dvc.api.read(DVC_LOCK, repo=self.repo, rev=commit)) or {}
        data = {out["path"]: out.get("md5") for body in (lock.get("stages") or {}).values()
                for out in body.get("outs") or [] if out["path"] == str(INGESTED)}
        if self._served and self._served != target:
            shutil.rmtree(self._served, ignore_errors=True)  # the old version is in memory until the swap
        self._served = target
        return target, {"name": self.name, "version": key, "stage": self.stage, "commit": commit,
                        "metrics": metrics, "data": data, "source": self.repo}
