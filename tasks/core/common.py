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

    Every section is checked against :mod:`tasks.core.schema` (types, ranges, choices, unknown
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


# libyaml's safe loader where PyYAML has it: the same documents, about 8x faster on params.yaml
# (every stage parses it, the always-run source stage included).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CHECKED_PARAMS: dict[tuple[str, str], Any] = {}  # (file, its text) -> the parsed, checked params


def _checked_params(path: Path) -> dict[str, Any]:
    """``path`` parsed and checked, once per process and content; a fresh copy on every call."""
    import copy

    from tasks.core import schema

    text = path.read_text()
    key = (str(path.resolve()), text)
    if key not in _CHECKED_PARAMS:
        try:
            params = yaml.load(text, Loader=SAFE_LOADER) or {}
        except yaml.YAMLError as error:
            raise PipelineError(f"{path.name}: not valid YAML: {' '.join(str(error).split())}") from None
        schema.check(params, PipelineError)
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


TARGET_KINDS = (None, "file", "dir")


def check_target(target: str | Path, kind: str | None = None) -> Path:
    """``target`` as an absolute path (its folder resolved, its own name kept, so a link is
    replaced, never the file it points to), after refusing what no writer may replace.

    Refused with a :class:`PipelineError` naming the path, before anything is created: an
    empty path, ``.``, ``..``, a filesystem root, the working folder or a folder above it, a
    path under an existing file, and (``kind``) an existing folder where a file is expected
    (``"file"``) or an existing file where a folder is expected (``"dir"``).
    """
    if kind not in TARGET_KINDS:
        raise ValueError(f"kind must be one of {TARGET_KINDS}, not {kind!r}")
    text = os.fspath(target)
    path = Path(text)
    noun = "folder" if kind == "dir" else "file"
    example = "" if kind == "dir" else " such as scored.csv"
    if not text.strip():
        raise PipelineError(f"an empty path names no {noun} to write; give a {noun} name{example}")
    if path.name in ("", ".", "..") or path == Path(path.anchor):
        what = ("a filesystem root" if path == Path(path.anchor) and path.anchor
                else "the current folder" if path.name in ("", ".") else "a folder above ('..')")
        raise PipelineError(f"{text}: is {what}, not a {noun} name; give a {noun} name{example}")
    full = path.parent.resolve() / path.name
    cwd = Path.cwd().resolve()
    if full == cwd or full in cwd.parents:
        raise PipelineError(f"{text}: is the working folder or a folder above it; replacing it would delete all it holds")
    if kind == "file" and full.is_dir():
        raise PipelineError(f"{text}: is an existing folder; expected a file name")
    if kind == "file" and text.endswith(("/", os.sep, "/.", f"{os.sep}.")):
        raise PipelineError(f"{text}: ends with '/', so it names a folder; expected a file name")
    if kind == "dir" and (full.exists() or full.is_symlink()) and not full.is_dir():
        raise PipelineError(f"{text}: is a file; expected a folder")
    existing = full.parent
    while not (existing.exists() or existing.is_symlink()):
        existing = existing.parent
    if not existing.is_dir():
        raise PipelineError(f"{text}: {existing} is a file, so nothing can be written under it")
    return full


@contextlib.contextmanager
def atomic_path(target: str | Path, kind: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success rename it into place.

    Works for files and directories; ``kind`` (``"file"`` or ``"dir"``) says which the writer
    makes, and an existing target of the other kind is refused (:func:`check_target`, which
    also refuses ``.``, roots and the like) before anything is created. A crash or exception
    leaves the previous ``target`` untouched and removes the temporary (a SIGKILL leaves it for
    the next writer of the same target to remove). Only the temporary folder made here is ever
    removed.
    """
    full = check_target(target, kind)
    full.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(full)
    workdir = Path(
        tempfile.mkdtemp(prefix=f".{full.name}.", suffix=f".{os.getpid()}{TEMP_SUFFIX}", dir=full.parent)
    )
    tmp = workdir / full.name
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise PipelineError(f"{target}: the writer produced nothing; the previous version is kept")
        if full.is_dir() and not full.is_symlink():
            # Directories cannot be replaced in one rename: move the old one aside first.
            old = workdir / (full.name + ".old")
            os.replace(full, old)
            try:
                os.replace(tmp, full)
            except BaseException:
                os.replace(old, full)
                raise
        else:
            os.replace(tmp, full)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def damaged_model(path: str | Path, what: str, reason: str | BaseException | None = None) -> PipelineError:
    """The one-line error for a model file that is missing (``reason`` None) or cannot be read."""
    path = Path(path)
    if reason is None:
        problem = "missing"
    else:
        if isinstance(reason, BaseException):
            lines = str(reason).strip().splitlines()
            reason = lines[0] if lines else type(reason).__name__
        reason = reason if len(reason) <= 120 else reason[:117] + "..."
        problem = f"damaged or not {what} ({reason})"
    return PipelineError(f"{path}: {problem}; retrain (dvc repro) or restore it (dvc checkout {path.parent})")


def check_model_archive(path: str | Path, what: str) -> Path:
    """A model file that is a zip archive (``.keras``): one that is missing, a folder or no zip
    at all is :func:`damaged_model`'s error, found without importing the library that reads it."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise damaged_model(path, what, "a folder" if path.is_dir() else None)
    try:
        if zipfile.is_zipfile(path):
            return path
    except OSError as error:
        raise damaged_model(path, what, error) from error
    raise damaged_model(path, what, "not a .keras zip archive")


def load_model_part(path: str | Path, what: str, loader: Callable[[Path], Any]) -> Any:
    """``loader(path)`` for one file of a trained model; a missing or unreadable file is the
    one-line error of :func:`damaged_model` (``what`` says what the file should be)."""
    path = Path(path)
    if not path.is_file():
        raise damaged_model(path, what, "a folder" if path.is_dir() else None)
    try:
        return loader(path)
    except PipelineError:
        raise
    except Exception as error:  # numpy, zipfile, h5py...: each its own error types; all mean unreadable
        raise damaged_model(path, what, error) from error


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


def nltk_mirror() -> Path | None:
    """The offline NLTK data beside the checkout (``../shared/nltk_data``), when NLTK_DATA is unset."""
    mirror = Path.cwd().resolve().parent / "shared" / "nltk_data"
    return mirror if not os.environ.get("NLTK_DATA") and mirror.is_dir() else None


def configure_nltk_data() -> None:
    """Point NLTK at its data: NLTK_DATA if set, else ../shared/nltk_data beside the checkout.

    NLTK reads NLTK_DATA itself; the offline mirror is added to the path so that
    no download is ever needed on this machine.
    """
    import nltk

    mirror = nltk_mirror()
    if mirror is not None and str(mirror) not in nltk.data.path:
        nltk.data.path.insert(0, str(mirror))


def find_nltk_data(resource: str) -> Path | None:
    """Where NLTK would find ``resource`` (``corpora/movie_reviews``: the folder, else its zip),
    searching its data path in its order without importing NLTK (which costs seconds); None
    when it is not there."""
    mirror = nltk_mirror()
    folders = [mirror] if mirror else []
    folders += [Path(entry) for entry in os.environ.get("NLTK_DATA", "").split(os.pathsep) if entry]
    folders += [Path.home() / "nltk_data", *(Path(sys.prefix) / sub for sub in ("nltk_data", "share/nltk_data", "lib/nltk_data")),
                *map(Path, ("/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data", "/usr/local/lib/nltk_data"))]
    for candidate in [folder / resource for folder in folders] + [folder / f"{resource}.zip" for folder in folders]:
        if candidate.exists():
            return candidate
    return None


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
    """Run a stage's ``main()``: expected failures print one clear line and exit non-zero.

    Run by DVC, a stage first gets back the last good outputs DVC deleted before starting it
    and, once it succeeded, keeps a copy of those DVC cannot restore (:mod:`tasks.core.lastgood`),
    so a failure or a kill never leaves the workspace without them.
    """
    from tasks.core import lastgood

    try:
        lastgood.restore()
        main()
        lastgood.keep()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


def write_files(files: dict[str, Any], directory: Path) -> None:
    """Write a kind's output files by type: text, JSON (dict) or Parquet (DataFrame)."""
    import pandas as pd

    for name, content in files.items():
        path = directory / name
        if isinstance(content, pd.DataFrame):
            content.to_parquet(path, index=False)
        elif isinstance(content, dict):
            path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            raise TypeError(f"{name}: cannot write {type(content).__name__}")
