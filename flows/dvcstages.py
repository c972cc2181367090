"""DVC side of the orchestration: the stage list, running one stage, what DVC did, dvc.lock.

No Prefect and no TensorFlow here: the flow (flows/pipeline.py) wraps these functions in
tasks, and the tests call them directly.

DVC stays the one DAG and the one cache. The stage names and their order come from
``dvc.yaml``; each stage runs as ``dvc repro --single-item <stage>`` in a subprocess (the
stage's own ``cmd`` then runs in a further subprocess, so TensorFlow never loads into the
flow process); whether DVC ran the stage, skipped it or restored it from its run cache is
read from DVC's own report of what it did.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"
RUN_LOCK = Path(".dvc/tmp/rnnflow-run.lock")  # .dvc/tmp is DVC's own scratch space, never versioned
# DVC's words when another process holds its repository lock, or (while that process's
# stage command runs, when DVC has released the repository lock) the stage's outputs.
DVC_LOCK_MESSAGES = ("Unable to acquire lock", "is busy, it is being blocked by")

# What DVC prints for each outcome of `dvc repro` (DVC 3.x wording).
RAN = "ran"            # the stage's command ran
SKIPPED = "skipped"    # nothing the stage depends on changed
RESTORED = "restored"  # DVC's run cache had outputs for these exact deps and params
UNKNOWN = "unknown"    # exit status 0 but none of the above (a DVC whose wording changed)
_OUTCOME_PATTERNS = {
    RAN: "Running stage '{stage}'",
    RESTORED: "Stage '{stage}' is cached - skipping run",
    SKIPPED: "Stage '{stage}' didn't change, skipping",
}
# Failures worth retrying: the source could not be reached. A stage's expected failures
# (tasks.core.common.PipelineError, exit status 2: bad input, failed checks) are not transient.
_TRANSIENT = re.compile(
    r"could not download|timed? ?out|temporar(il)?y|connection (reset|refused|aborted)|"
    r"network is unreachable|name resolution|remote end closed",
    re.IGNORECASE,
)
_STAGE_EXIT = re.compile(r"exited with (-?\d+)")
# Noise in the run log: TensorFlow/absl C++ log lines (I0000 00:00:... file.cc:12] ...) and
# DVC's hints about git and autostage, which a scheduled run does not act on.
_NOISE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d|\s*git add |To track the changes with git|To enable auto staging|"
    r"\s*dvc config core.autostage|Use `dvc push` to send|WARNING: All log messages before absl)"
)


class CheckoutBusy(RuntimeError):
    """Another run holds this checkout (the rnnflow run lock or DVC's repository lock)."""


class StageFailed(RuntimeError):
    """`dvc repro` of one stage failed; the message carries the stage's own error lines."""

    def __init__(self, stage: str, returncode: int, output: str):
        self.stage = stage
        self.returncode = returncode
        self.output = output
        match = _STAGE_EXIT.search(output)
        self.exit_code = int(match.group(1)) if match else None
        errors = [line.strip() for line in output.splitlines() if line.lstrip().lower().startswith("error")]
        detail = "; ".join(errors[-3:]) or "\n".join(output.strip().splitlines()[-5:])
        super().__init__(f"stage '{stage}' failed (dvc exit status {returncode}): {detail}")

    @property
    def transient(self) -> bool:
        """A source that could not be reached, or a crash other than an expected stage failure."""
        if _TRANSIENT.search(self.output):
            return True
        return self.exit_code is not None and self.exit_code not in (0, 2)


# ---------------------------------------------------------------------------------------
# The stage list from dvc.yaml


def find_root(start: str | Path | None = None) -> Path:
    """The checkout that holds ``dvc.yaml`` and ``.dvc/``: ``start`` (default: cwd) or a parent."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / DVC_YAML).is_file() and (candidate / ".dvc").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no DVC project (dvc.yaml and .dvc/) at or above {here}: run from an rnnflow checkout "
        "(a deployment's pull step sets the working directory to $RNNFLOW_HOME)"
    )


def _paths(entries: list[Any] | None, wdir: str) -> list[str]:
    """Paths of a deps/outs/metrics/plots list (items are strings or one-key mappings)."""
    paths = []
    for entry in entries or []:
        for path in ([entry] if isinstance(entry, str) else list(entry)):
            path = str(path)
            if "${" in path:  # interpolated from params (e.g. ${ingest.source}): never a stage output
                continue
            paths.append(os.path.normpath(os.path.join(wdir, path)))
    return paths


@dataclass
class Stage:
    name: str
    deps: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    uncached_outs: list[str] = field(default_factory=list)


def read_stages(root: str | Path) -> list[Stage]:
    """The stages of ``dvc.yaml`` in file order, with their deps and outputs (outs, metrics, plots)."""
    path = Path(root) / DVC_YAML
    spec = yaml.safe_load(path.read_text()) or {}
    stages = []
    for name, body in (spec.get("stages") or {}).items():
        if not isinstance(body, dict) or "cmd" not in body:
            raise ValueError(f"{path}: stage '{name}' uses foreach/matrix or has no cmd; the flow runs plain stages only")
        wdir = body.get("wdir", ".")
        outs, uncached = [], []
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind) or []:
                options = next(iter(entry.values())) if isinstance(entry, dict) else None
                cache = (options or {}).get("cache", kind == "outs")
                for out in _paths([entry], wdir):
                    outs.append(out)
                    if not cache:
                        uncached.append(out)
        stages.append(Stage(name, _paths(body.get("deps"), wdir), outs, uncached))
    if not stages:
        raise ValueError(f"{path}: no stages")
    return stages


def _overlaps(dep: str, out: str) -> bool:
    """DVC's rule: a dep uses an output if the paths are equal or one holds the other."""
    return dep == out or dep.startswith(out + os.sep) or out.startswith(dep + os.sep)


def upstream(stages: list[Stage]) -> dict[str, set[str]]:
    """For each stage, the stages whose outputs it depends on (from deps/outs)."""
    graph = {stage.name: set() for stage in stages}
    for stage in stages:
        for other in stages:
            if other is not stage and any(_overlaps(dep, out) for dep in stage.deps for out in other.outs):
                graph[stage.name].add(other.name)
    return graph


def stage_order(root: str | Path) -> list[str]:
    """Stage names to run, one at a time: ``dvc.yaml``'s file order, moved only where a stage
    is listed before a stage it depends on (a stable topological sort)."""
    stages = read_stages(root)
    graph = upstream(stages)
    order: list[str] = []
    pending = [stage.name for stage in stages]
    while pending:
        ready = next((name for name in pending if graph[name] <= set(order)), None)
        if ready is None:
            raise ValueError(f"{DVC_YAML}: stages {pending} depend on each other in a cycle")
        order.append(ready)
        pending.remove(ready)
    return order


# ---------------------------------------------------------------------------------------
# Running DVC


def dvc_env() -> dict[str, str]:
    """This interpreter's environment first on PATH: the stages' `python -m tasks.X` is the venv's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")  # stage output streams into the run log as it happens
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_dvc(
    args: list[str],
    root: str | Path,
    on_line: Callable[[str], None] | None = None,
    poll: Callable[[], None] | None = None,
    poll_seconds: float = 1.0,
) -> subprocess.CompletedProcess:
    """Run ``dvc ARGS`` in ``root``; stream its output lines to ``on_line`` and call ``poll``
    about every ``poll_seconds`` while it runs (and once after)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # read to the end, always: a closed pipe would fail the stage
            lines.append(line)
            if on_line and line.strip() and not _NOISE.match(line):
                with contextlib.suppress(Exception):
                    on_line(line.rstrip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while reader.is_alive():
            reader.join(poll_seconds)
            if poll:
                poll()
        process.wait()
    except BaseException:
        process.terminate()  # cancelled or crashed: DVC stops the stage and keeps its lock consistent
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines), "")


def run_dvc_locked(
    args: list[str],
    root: str | Path,
    lock_attempts: int = 3,
    lock_wait: float = 5.0,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """:func:`run_dvc`, waiting ``lock_wait`` s and trying again while another DVC process holds
    the repository lock; :class:`CheckoutBusy` once ``lock_attempts`` are used up."""
    for attempt in range(1, lock_attempts + 1):
        result = run_dvc(args, root, **kwargs)
        if result.returncode == 0 or not any(message in result.stdout for message in DVC_LOCK_MESSAGES):
            return result
        if attempt < lock_attempts:
            time.sleep(lock_wait)
    raise CheckoutBusy(
        f"another run holds the DVC lock on {Path(root)} (.dvc/tmp/lock): `dvc {' '.join(args)}` "
        f"could not start after {lock_attempts} attempt(s). Nothing was written; wait for the other "
        "run to finish, or if none is running see https://dvc.org/doc/user-guide/troubleshooting#lock-issue"
    )


def outcome(stage: str, output: str) -> str:
    """What ``dvc repro`` did with ``stage``: ran, skipped, restored (run cache) or unknown."""
    for name, pattern in _OUTCOME_PATTERNS.items():
        if pattern.format(stage=stage) in output:
            return name
    return UNKNOWN


def repro_stage(stage: str, root: str | Path, pull: bool = False, **kwargs: Any) -> str:
    """``dvc repro --single-item STAGE``; the outcome, or :class:`StageFailed`/:class:`CheckoutBusy`.

    ``pull``: add ``--pull``, so that outputs DVC finds in its run cache are downloaded from the
    default remote and restored instead of recomputed (a fresh clone has none of them locally).
    """
    result = run_dvc_locked(["repro", "--single-item", *(["--pull"] if pull else []), stage], root, **kwargs)
    if result.returncode != 0:
        raise StageFailed(stage, result.returncode, result.stdout)
    return outcome(stage, result.stdout)


def default_remote(root: str | Path, needed_by: str = "push=True (--push)") -> str:
    """The name of the default DVC remote, or a ValueError saying how to configure one."""
    result = run_dvc(["remote", "default"], root)
    name = result.stdout.strip().splitlines()[-1].strip() if result.stdout.strip() else ""
    if result.returncode != 0 or not name or "No default remote" in result.stdout:
        raise ValueError(
            f"{Path(root)} has no default DVC remote, which {needed_by} needs. Configure one first, e.g. "
            "`dvc remote add -d storage s3://BUCKET/rnnflow` (or gs://..., /mnt/shared/dvc-store) "
            "and commit .dvc/config"
        )
    return name


def push_run_cache_objects(root: str | Path, remote: str) -> int:
    """Upload every local object that DVC's run-cache entries point at; return how many were sent.

    The run cache also keeps the stages' uncached outputs (metrics, plots: ``cache: false``) in
    the local cache, but ``dvc push --run-cache`` (DVC 3) uploads the entries and the workspace's
    cached outputs only. Without these objects, ``dvc repro --pull`` on another machine finds the
    entry, cannot download all its outputs and runs the stage again. Entries that came from the
    remote and whose objects were never downloaded here are skipped: whoever made them sent them.
    """
    from dvc.repo import Repo

    with Repo(str(root)) as repo, repo.lock:
        runs = Path(repo.stage_cache.cache_dir)
        entries = [(value.parent.name, value.name) for value in runs.glob("*/*/*") if value.is_file()]
        local = repo.cache.local
        objects = {obj for objs in repo.stage_cache.get_used_objs(entries).values() for obj in objs
                   if local.exists(obj.value)}
        if not objects:
            return 0
        result = repo.cloud.push(objects, remote=remote)
    if result.failed:
        raise RuntimeError(f"could not upload {len(result.failed)} run-cache object(s) to DVC remote '{remote}'")
    return len(result.transferred)


# ---------------------------------------------------------------------------------------
# dvc.lock and git


def lock_outs(root: str | Path, stage: str | None = None) -> dict[str, dict[str, str]]:
    """``{stage: {out path: md5}}`` from ``dvc.lock`` (one stage's, if ``stage`` is given)."""
    path = Path(root) / DVC_LOCK
    if not path.exists():
        return {} if stage is None else {stage: {}}
    lock = (yaml.safe_load(path.read_text()) or {}).get("stages") or {}
    result = {
        name: {out["path"]: out.get("md5") or out.get("etag") or out.get("checksum") or "" for out in body.get("outs") or []}
        for name, body in lock.items()
    }
    return result if stage is None else {stage: result.get(stage, {})}


def git(root: str | Path, *args: str) -> str:
    """Output of a git command in ``root`` ("" when it fails)."""
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def git_revision(root: str | Path) -> str:
    """HEAD's commit, with ``+dirty`` when tracked files differ from it ("" without commits)."""
    head = git(root, "rev-parse", "HEAD")
    if head and git(root, "status", "--porcelain", "--untracked-files=no"):
        head += "+dirty"
    return head


def untracked_pipeline_files(root: str | Path) -> list[str]:
    """Files `dvc exp save` must be told to include: dvc.lock, the uncached outputs and
    metrics (cache: false), and the .gitignore files DVC writes, where git does not track them yet."""
    paths = [DVC_LOCK, *(out for stage in read_stages(root) for out in stage.uncached_outs)]
    listed = git(root, "ls-files", "--others", "--exclude-standard", "--", *paths, ":(glob)**/.gitignore")
    return [line for line in listed.splitlines() if line]


# ---------------------------------------------------------------------------------------
# One run at a time per checkout


@contextlib.contextmanager
def run_lock(root: str | Path, timeout: float = 0.0, holder: str = "") -> Iterator[Path]:
    """Hold this checkout for one pipeline run (an flock on ``.dvc/tmp/rnnflow-run.lock``).

    DVC's own lock is only held while one `dvc` command runs; between stages a second flow
    run could slip in (and its parameter overrides would mix with this run's). Waits up to
    ``timeout`` seconds, then raises :class:`CheckoutBusy` naming the holder. The kernel drops
    the lock when the holding process dies, so a killed run never leaves it stale.
    """
    path = Path(root) / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    other = path.read_text().strip() or "unknown"
                    raise CheckoutBusy(
                        f"another rnnflow run holds the checkout {Path(root)} ({other}; lock file {RUN_LOCK}); "
                        f"waited {timeout:.0f} s. Two runs on one checkout would overwrite each other's "
                        "outputs: wait for it to finish, or run in a separate clone"
                    ) from None
                time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "holder": holder, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
