"""Shared plumbing for the stages: parameters, atomic outputs, errors, NLTK data.

Everything here is cheap to import: no TensorFlow, no WordNet.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

PARAMS_FILE = Path("params.yaml")
TEMP_SUFFIX = ".tmp"


class PipelineError(Exception):
    """An expected failure (bad input, failed check) reported without a traceback."""

    exit_code = 2


def load_params(section: str | None = None, path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Return ``params.yaml`` or one section of it, after checking the WHOLE file.

    Every section is checked against :mod:`tasks.params_schema` (types, ranges, choices, unknown
    and missing keys), so a bad value in any section stops whichever stage reads first (DVC's
    always-run ``source`` stage) before anything is changed, with a :class:`PipelineError` of one
    line naming the dotted key. Values are returned as written (plain dicts, no defaults filled in).
    """
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: parameter file not found (run from the project root)")
    params = _checked_params(path)
    if section is None:
        return params
    if section not in params:
        raise PipelineError(f"{path}: no '{section}' section")
    return params[section]


_CHECKED_PARAMS: dict[tuple[str, str], Any] = {}  # (file, its text) -> the parsed, checked params


def _checked_params(path: Path) -> dict[str, Any]:
    """``path`` parsed and checked, once per process and content; a fresh copy on every call."""
    import copy

    from tasks import params_schema

    text = path.read_text()
    key = (str(path.resolve()), text)
    if key not in _CHECKED_PARAMS:
        try:
            params = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise PipelineError(f"{path.name}: not valid YAML: {' '.join(str(error).split())}") from None
        params_schema.check(params, PipelineError)
        _CHECKED_PARAMS[key] = params
    return copy.deepcopy(_CHECKED_PARAMS[key])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove temporaries of ``target`` left by killed writers (``.NAME.RANDOM.PID.tmp``).

    A writer killed between the two renames of a directory swap left the old output in its
    temporary: it is put back first, so the last good output is never lost.
    """
    target = Path(target)
    removed = []
    for candidate in target.parent.glob(f".{glob.escape(target.name)}.*{TEMP_SUFFIX}"):
        try:
            pid = int(candidate.name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and candidate.is_dir() and not _pid_alive(pid):
            previous = candidate / f"{target.name}.old"
            if previous.exists() and not target.exists():
                os.replace(previous, target)
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success rename it into place.

    Works for files and directories. A crash or exception leaves the previous
    ``target`` untouched and removes the temporary (a SIGKILL leaves it for the next
    writer of the same target to remove).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}{TEMP_SUFFIX}", dir=target.parent)
    ) / target.name
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            # Directories cannot be replaced in one rename: move the old one aside first.
            old = tmp.parent / (target.name + ".old")
            os.replace(target, old)
            os.replace(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


TABLE_METADATA_KEY = b"rnnflow"


def write_parquet(frame, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write a DataFrame to Parquet, atomically; ``metadata`` travels in the file's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**table.schema.metadata, TABLE_METADATA_KEY: json.dumps(metadata)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table_metadata(path: str | Path) -> dict[str, Any]:
    """The ``metadata`` that :func:`write_parquet` stored with a table ({} when none)."""
    import pyarrow.parquet as pq

    stored = (pq.read_schema(path).metadata or {}).get(TABLE_METADATA_KEY)
    return json.loads(stored) if stored else {}


def read_parquet(path: str | Path, stage_hint: str = "the previous stage"):
    """Read a stage input, with an error that says which stage makes it."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: missing input; run {stage_hint} first (dvc repro)")
    return pd.read_parquet(path)


def configure_nltk_data() -> None:
    """Point NLTK at its data: NLTK_DATA if set, else ../shared/nltk_data beside the checkout.

    NLTK reads NLTK_DATA itself; the offline mirror is added to the path so that
    no download is ever needed on this machine.
    """
    import nltk

    if os.environ.get("NLTK_DATA"):
        return
    mirror = Path.cwd().resolve().parent / "shared" / "nltk_data"
    if mirror.is_dir() and str(mirror) not in nltk.data.path:
        nltk.data.path.insert(0, str(mirror))


def ensure_nltk_resource(resource: str, package: str):
    """NLTK's path pointer to a resource (e.g. ``corpora/wordnet``), unpacked or zipped.

    Downloads it only when it is nowhere on NLTK's data path.
    """
    import nltk

    configure_nltk_data()
    zipped = f"{resource}.zip/{resource.rsplit('/', 1)[-1]}/"
    for attempt in range(2):
        for candidate in (resource, zipped):
            with contextlib.suppress(LookupError):
                return nltk.data.find(candidate)
        if attempt == 0 and not nltk.download(package, quiet=True, raise_on_error=False):
            break
    raise PipelineError(
        f"NLTK resource '{package}' not found on {nltk.data.path} and could not be downloaded; "
        "set NLTK_DATA to a folder that holds it"
    )


def run_main(main: Callable[[], Any]) -> None:
    """Run a stage's ``main()``: expected failures print one clear line and exit non-zero."""
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
