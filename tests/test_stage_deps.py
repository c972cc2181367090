"""Each stage depends on exactly the project files its process runs, for the data's kind.

The source stage writes ``data/stages/<stage>.json`` (:mod:`tasks.core.stagecode`): the static
import closure of the stage's entry point and its kind's part, the files it reads, their md5s and
the params it reads. These tests hold ``dvc.yaml`` to that design, check the closures against what
the stage processes really load (an audit hook in every Python process of a real ``dvc repro``),
and edit a trained project's code and params to see that ``dvc status`` names exactly the stages
that run what changed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run, up_to_date
from tasks import kinds
from tasks.core import stagecode
from tasks.readers import profiles

SPEC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = SPEC["stages"]
DATA_STAGES = ("ingest", "validate", "clean", "tokenize")
MODEL_SIDE = ("tasks/networks/", "tasks/baselines/")


def manifests_for(dataset: str, kind: str | None = None) -> dict[str, list[str]]:
    """stage -> the code files its manifest lists for a project of ``dataset`` (as the source stage computes them)."""
    profile = profiles.get(dataset)
    kind = kind or profile.kind
    reader = profile.reader.partition(":")[0]
    return {stage: stagecode.closure(stagecode.stage_modules(stage, kind, reader), ROOT)
            + stagecode.data_files(stage, kind) for stage in stagecode.MANIFEST_STAGES}


def test_dvc_yaml_depends_on_manifests_not_on_code():
    for name, stage in STAGES.items():
        code = [dep for dep in stage["deps"] if dep.startswith("tasks/")]
        if name == "source":  # always run; its own code is kind-independent, listed as it is
            assert code == stagecode.closure(["tasks.source"], ROOT)
            outs = [next(iter(item)) if isinstance(item, dict) else item for item in stage["outs"]]
            assert [f"data/stages/{other}.json" for other in stagecode.MANIFEST_STAGES] == \
                [out for out in outs if out.startswith("data/stages/")]
            continue
        assert name in stagecode.MANIFEST_STAGES
        assert code == [] and f"data/stages/{name}.json" in stage["deps"], name
        assert "params" not in stage, f"{name}: params come through data/stages/{name}.json"


@pytest.mark.parametrize("dataset", ["movie_reviews", "brown", "ts"])
def test_each_kind_runs_only_its_own_code(dataset):
    own = profiles.get(dataset).kind
    others = [kind for kind in kinds.KINDS if kind != own]
    for stage, files in manifests_for(dataset).items():
        assert not [path for path in files if any(f"tasks/kinds/{kind}/" in path for kind in others)], stage
        if stage in DATA_STAGES:
            assert not [path for path in files if path.startswith(MODEL_SIDE)], (stage, files)
        assert "tasks/core/lastgood.py" in files  # every stage restores its last good outputs (run_main)


def test_a_text_project_never_runs_series_or_language_model_code():
    files = {path for listed in manifests_for("movie_reviews").values() for path in listed}
    assert not {"tasks/inputs/series.py", "tasks/readers/tsfile.py", "tasks/readers/sequences.py",
                "tasks/baselines/ngram.py"} & files


def test_validate_reads_its_kind_suite():
    for kind in kinds.KINDS:
        assert kinds.part(kind, "validate").SUITE == kind  # stagecode.data_files relies on it
        assert (ROOT / stagecode.data_files("validate", kind)[0]).is_file()


TRACER = '''
import atexit, json, os, sys
_opened = set()
def _hook(event, args):
    if event == "open" and isinstance(args[0], str):
        _opened.add(os.path.abspath(args[0]))
sys.addaudithook(_hook)
@atexit.register
def _dump():
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return
    root = os.getcwd() + os.sep
    imported = {os.path.abspath(m.__file__) for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
    def project(paths):
        return sorted(p[len(root):] for p in paths if p.startswith(root + "tasks" + os.sep) and "__pycache__" not in p)
    with open(os.path.join(os.environ["RNNFLOW_TRACE_DIR"], stage + ".json"), "w") as out:
        json.dump({"imported": project(imported), "opened": project(_opened - imported)}, out)
'''


@pytest.mark.slow
def test_stage_processes_load_nothing_their_manifest_lacks(trained_copy, tmp_path):
    """Every project file a stage's process imports or opens is in its manifest; and every manifest
    lists a closure the process could load (the static graph is a superset of one run's imports)."""
    root = trained_copy
    tracer = tmp_path / "tracer"
    tracer.mkdir()
    (tracer / "sitecustomize.py").write_text(TRACER)
    traces = tmp_path / "traces"
    traces.mkdir()
    run(["dvc", "repro", "--force"], root, env={"PYTHONPATH": str(tracer), "RNNFLOW_TRACE_DIR": str(traces)})
    for stage in stagecode.MANIFEST_STAGES:
        listed = set(json.loads((root / "data/stages" / f"{stage}.json").read_text())["code"])
        trace = json.loads((traces / f"{stage}.json").read_text())
        loaded = set(trace["imported"]) | set(trace["opened"])
        assert loaded - listed == set(), f"{stage} ran or read files its manifest lacks"
        assert f"tasks/{stage}.py" in loaded, stage
    # The source stage reads every code file (to hash it) but runs only its own closure.
    source = set(json.loads((traces / "source.json").read_text())["imported"])
    assert source <= {dep for dep in STAGES["source"]["deps"] if dep.startswith("tasks/")}


def _append_comment(root: Path, relative: str) -> None:
    path = root / relative
    path.write_text(path.read_text() + "\n# an edit that changes no behaviour\n")


def _set_param(root: Path, dotted: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    *parents, last = dotted.split(".")
    section = params
    for name in parents:
        section = section[name]
    section[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def changed_stages(root: Path) -> set[str]:
    """The stages `dvc status` lists after the source stage re-listed the code (as `dvc repro` does first)."""
    run([sys.executable, "-m", "tasks.source"], root)
    status = run(["dvc", "status", "--json"], root).stdout
    return set(json.loads(status or "{}")) - {"source"}


@pytest.mark.slow
@pytest.mark.parametrize("edit,expected", [
    (lambda root: _append_comment(root, "tasks/kinds/language_model/train.py"), set()),
    (lambda root: _append_comment(root, "tasks/inputs/series.py"), set()),
    (lambda root: _append_comment(root, "tasks/networks/model.py"), {"train", "evaluate"}),
    (lambda root: _append_comment(root, "tasks/kinds/text_classification/clean.py"), {"clean"}),
    (lambda root: _set_param(root, "train.language_model.units", 7), set()),
    (lambda root: _set_param(root, "train.text_classification.units", 7), {"train"}),
    (lambda root: _set_param(root, "evaluate.series_classification.worst_examples", 3), set()),
], ids=["language_model_code", "series_input_code", "network_code", "text_cleaning_code",
        "other_kind_param", "own_kind_param", "other_kind_evaluate_param"])
def test_an_edit_reruns_exactly_the_stages_that_run_it(trained_copy, edit, expected):
    root = trained_copy
    assert changed_stages(root) == set()  # the trained project is up to date
    edit(root)
    assert changed_stages(root) == expected
    if not expected:
        assert up_to_date(run(["dvc", "status"], root).stdout)


def _project_modules() -> list[str]:
    return sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for path in (ROOT / "tasks").rglob("*.py") if "__pycache__" not in path.parts)


STAGE_MODULES = {f"tasks.{stage}" for stage in STAGES} | {"tasks.predict", "tasks.generate"}


def test_no_module_imports_a_stage_module():
    for module in _project_modules():
        path = stagecode.module_file(module, ROOT).relative_to(ROOT).as_posix()
        imported = set(stagecode._imported(path, module, str(ROOT)))
        assert not imported & STAGE_MODULES, f"{module} imports {sorted(imported & STAGE_MODULES)}"


def test_no_import_circles():
    """Counting a package as importing its __init__'s imports, the module graph is acyclic."""
    graph = {}
    for module in _project_modules():
        path = stagecode.module_file(module, ROOT).relative_to(ROOT).as_posix()
        graph[module] = [name for name in stagecode._imported(path, module, str(ROOT)) if name != module]
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == 2:
            return
        assert state.get(module) != 1, " -> ".join(trail + [module])
        state[module] = 1
        for name in graph.get(module, []):
            visit(name, trail + [module])
        state[module] = 2

    for module in graph:
        visit(module, [])


def test_an_earlier_runs_import_statements_serve_only_while_a_files_text_is_the_same(tmp_path, monkeypatch):
    """The source stage keeps each file's import statements by its md5 (``.dvc/tmp``) instead of
    parsing every file on every run: reused for the same text, parsed again after an edit, and a
    damaged entry ignored."""
    for name, text in {"__init__": "", "a": "from tasks import b\n", "b": "", "c": ""}.items():
        (tmp_path / "tasks").mkdir(exist_ok=True)
        (tmp_path / f"tasks/{name}.py").write_text(text)
    monkeypatch.setattr(stagecode, "_IMPORTS", {})
    monkeypatch.setattr(stagecode, "_EARLIER", {})
    assert stagecode.closure(["tasks.a"], tmp_path) == ["tasks/__init__.py", "tasks/a.py", "tasks/b.py"]
    keys = {key.split()[0]: key for key in stagecode.known_imports()}
    assert set(keys) == {"tasks/__init__.py", "tasks/a.py", "tasks/b.py"}

    monkeypatch.setattr(stagecode, "_IMPORTS", {})  # a new run, given what an earlier one stored
    stagecode.reuse_imports({keys["tasks/a.py"]: [["tasks.c", []]], keys["tasks/b.py"]: "damaged"})
    assert stagecode.closure(["tasks.a"], tmp_path) == ["tasks/__init__.py", "tasks/a.py", "tasks/c.py"]
    assert stagecode.closure(["tasks.b"], tmp_path) == ["tasks/__init__.py", "tasks/b.py"]
    (tmp_path / "tasks/a.py").write_text("from tasks import b\nimport tasks.c\n")  # new text: parsed again
    assert stagecode.closure(["tasks.a"], tmp_path) == ["tasks/__init__.py", "tasks/a.py", "tasks/b.py", "tasks/c.py"]
