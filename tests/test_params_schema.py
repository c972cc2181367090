"""params.yaml's schema (tasks/core/schema.py), checked whole by every stage's load_params.

Each class of mistake gives one line naming the dotted key, its value and what is allowed; the
schema agrees with what the code reads (profiles, kinds, suites, option dataclasses, defaults);
and on a real DVC project a bad value stops `dvc repro` at its first stage with every output
byte for byte as it was.
"""
from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY_PARAMS, merge_params, run
from tasks.core import schema
from tasks.core.common import PipelineError, load_params, run_main

COMMITTED = yaml.safe_load((ROOT / "params.yaml").read_text())
DELETE = object()


def with_value(params: dict, dotted: str, value) -> dict:
    """A copy of ``params`` with ``dotted`` set to ``value`` (or removed: :data:`DELETE`)."""
    changed = copy.deepcopy(params)
    *path, last = dotted.split(".")
    node = changed
    for key in path:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return changed


def load_error(tmp_path: Path, params: dict) -> PipelineError:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(PipelineError) as error:
        load_params("ingest", path)
    return error.value


def test_the_committed_params_and_the_tiny_projects_validate(tmp_path: Path):
    assert schema.problems(COMMITTED) == []
    assert load_params(path=ROOT / "params.yaml") == COMMITTED  # as written: no defaults filled in
    assert schema.problems(merge_params(COMMITTED, TINY_PARAMS)) == []


# (dotted key, bad value, the message after "params.yaml: ")
MISTAKES = [
    ("train.text_classification.epochs", 0, "train.text_classification.epochs: must be an integer >= 1, not 0"),
    ("train.text_classification.epochs", -1, "train.text_classification.epochs: must be an integer >= 1, not -1"),
    ("train.text_classification.epochs", True, "train.text_classification.epochs: must be an integer >= 1, not true"),
    ("train.text_classification.epochs", 2.5, "train.text_classification.epochs: must be an integer >= 1, not 2.5"),
    ("train.text_classification.epochs", DELETE, "train.text_classification.epochs: missing; required: an integer >= 1"),
    ("train.text_classification.units", 0, "train.text_classification.units: must be an integer >= 1, not 0"),
    ("train.language_model.layers", 0, "train.language_model.layers: must be an integer >= 1, not 0"),
    ("train.series_classification.batch_size", "32", "train.series_classification.batch_size: must be an integer >= 1, not '32'"),
    ("train.text_classification.dropout", 1, "train.text_classification.dropout: must be a number in [0, 1), not 1"),
    ("train.text_classification.learning_rate", "1e-3",
     "train.text_classification.learning_rate: must be a number > 0, not '1e-3' (text, not a number"),
    ("train.text_classification.early_stopping_patience", -1,
     "train.text_classification.early_stopping_patience: must be an integer >= 0, not -1"),
    ("train.text_classification.model", "transformer",
     "train.text_classification.model: must be one of simple_rnn | lstm | gru, not 'transformer'"),
    ("train.language_model.model", "simple_rnn", "train.language_model.model: must be one of lstm | gru, not 'simple_rnn'"),
    ("train.text_classification.pooling", "attention", "train.text_classification.pooling: must be one of last | max | mean"),
    ("train.text_classification.class_weight", None, "train.text_classification.class_weight: must be one of balanced | none, not null"),
    ("train.text_classification.ensemble_weight", 1.5,
     "train.text_classification.ensemble_weight: must be auto or a number from 0 to 1, not 1.5"),
    ("train.series_classification.threshold_objective", "f1",
     "train.series_classification.threshold_objective: must be one of macro_f1 | accuracy, not 'f1'"),
    ("train.mixed_precision", "yes", "train.mixed_precision: must be one of auto | true | false, not 'yes'"),
    ("train.distribute", "mirrored", "train.distribute: must be one of auto | off, not 'mirrored'"),
    ("clean.validation_fraction", 1.5, "clean.validation_fraction: must be a number in (0, 1), not 1.5"),
    ("clean.test_fraction", 0.9,
     "clean.test_fraction: clean.validation_fraction + clean.test_fraction must be below 1 (the rest is the train split), "
     "not 0.1 + 0.9"),
    ("clean.series_classification.missing", "guess", "clean.series_classification.missing: must be one of interpolate | fill | drop"),
    ("clean.series_classification.normalise", 3, "clean.series_classification.normalise: must be one of none | series | auto, not 3"),
    ("train.series_classification.max_series_steps", -5,
     "train.series_classification.max_series_steps: must be a positive integer, or null, not -5"),
    ("clean.language_model.end_of", "line", "clean.language_model.end_of: must be one of sentence | document, not 'line'"),
    ("tokenize.text_classification.vocab_size", 1,
     "tokenize.text_classification.vocab_size: must be an integer >= 3 or null (ids 0 and 1 are padding and the OOV token"),
    ("tokenize.language_model.vocab_size", 2, "tokenize.language_model.vocab_size: must be an integer >= 3 or null"),
    ("tokenize.text_classification.min_count", 0, "tokenize.text_classification.min_count: must be an integer >= 1, not 0"),
    ("tokenize.text_classification.max_len", "full", "tokenize.text_classification.max_len: must be an integer >= 1 or auto, not 'full'"),
    ("tokenize.text_classification.length_percentile", 101,
     "tokenize.text_classification.length_percentile: must be a number in (0, 100], not 101"),
    ("baseline.text_classification.ngram_range", [2, 1],
     "baseline.text_classification.ngram_range: must be [a, b] with integers 1 <= a <= b, not [2, 1]"),
    ("baseline.text_classification.C", [], "baseline.text_classification.C: must be a non-empty list of positive numbers"),
    ("baseline.series_classification.C", [1, 0], "baseline.series_classification.C: must be a non-empty list of positive numbers"),
    ("baseline.text_classification.weighting", "bm25", "baseline.text_classification.weighting: must be one of tfidf | nb"),
    ("baseline.language_model.discount", 1.5, "baseline.language_model.discount: must be one of modified | auto or a number in (0, 1], not 1.5"),
    ("pretrain.early_stopping_patience", 0, "pretrain.early_stopping_patience: must be an integer >= 1, not 0"),
    ("pretrain.source", "train", "pretrain.source: must be a list of corpora (files, folders, globs, URLs or train) or null, "
                                 "not 'train'"),
    ("evaluate.text_classification.length_buckets", [0, 50, 20],
     "evaluate.text_classification.length_buckets: must be a list of at least 2 increasing numbers (bucket edges)"),
    ("evaluate.language_model.temperature", 0, "evaluate.language_model.temperature: must be a number > 0, not 0"),
    ("promote.floors", {"roc_auc": "high"}, "promote.floors: must be a mapping of metric names to minimums or null"),
    ("ingest.dataset", "nope", "ingest.dataset: must be one of movie_reviews | clothing_reviews | imdb | table |"),
    ("ingest.text_columns", "text",
     "ingest.text_columns: must be a non-empty list of column names, not 'text' (a list: write [text])"),
    ("ingest.text_columns", [], "ingest.text_columns: must be a non-empty list of column names, not []"),
    ("ingest.text_columns", ["title", ""], "ingest.text_columns: must be a non-empty list of column names, not ['title', '']"),
    ("ingest.feature_columns", "x", "ingest.feature_columns: must be a list of column names, not 'x'"),
    ("ingest.label_column", 3, "ingest.label_column: must be a column name or null, not 3"),
    ("ingest.kind", "regression", "ingest.kind: must be one of auto | text_classification | language_model | "
                                  "series_classification or null, not 'regression'"),
    ("validate.min_class_fraction", 0.7, "validate.min_class_fraction: must be a number in [0, 0.5], not 0.7"),
    ("validate.rating_max", "high", "validate.rating_max: must be auto or a number, not 'high'"),
    ("validate.max_chars", 2, "validate.max_chars: must be >= validate.min_chars (3), not 2"),
    ("validate.min_rows", DELETE, "validate.min_rows: missing; the text_classification checks need it (an integer >= 0)"),
    ("validate.drift.lenght_psi", {"warn": 0.1}, "validate.drift.lenght_psi: unknown key; did you mean 'length_psi'?"),
    ("validate.drift.length_psi", {"warn": 0.5}, "validate.drift.length_psi.warn: must be <= validate.drift.length_psi.fail "
                                                 "(0.25; a warning comes before a failure), not 0.5"),
    ("validate.drift.vocabulary_top_n", 0, "validate.drift.vocabulary_top_n: must be an integer >= 1, not 0"),
    ("train.text_classification.epoch", 3, "train.text_classification.epoch: unknown key; did you mean 'epochs'?"),
    ("train.epochs", 3, "train.epochs: unknown key at this level; train.text_classification, train.series_classification "
                        "and train.language_model read it"),
    ("train.series_classification.embedding_dim", 8, "train.series_classification.embedding_dim: unknown key at this level; "
                                                     "train.text_classification and train.language_model read it"),
    ("train.language_model.optimizer", "adam", "train.language_model.optimizer: unknown key at this level; "
                                               "train.text_classification and train.series_classification read it"),
    ("trian", {}, "trian: unknown section; did you mean 'train'?"),
    ("train.text_classification.init", "pretrained", "train.text_classification.init: pretrained needs a pretraining corpus, "
                                                     "but pretrain.source is empty"),
]


@pytest.mark.parametrize("dotted,value,message", MISTAKES,
                         ids=[f"{dotted}={'<deleted>' if value is DELETE else value!r}" for dotted, value, _ in MISTAKES])
def test_each_mistake_is_one_line_naming_the_key(tmp_path: Path, dotted, value, message):
    error = load_error(tmp_path, with_value(COMMITTED, dotted, value))
    assert error.problems == [str(error)], error.problems  # exactly one problem: nothing else is flagged
    assert str(error).startswith("params.yaml: " + message), str(error)
    assert "\n" not in str(error)


def test_every_problem_is_reported_at_once(tmp_path: Path):
    params = with_value(with_value(COMMITTED, "train.text_classification.epochs", 0), "ingest.text_columns", "text")
    error = load_error(tmp_path, with_value(params, "tokenize.text_classification.vocab_sise", 100))
    assert [problem.split(":")[1].strip() for problem in error.problems] == [
        "ingest.text_columns", "tokenize.text_classification.vocab_sise", "train.text_classification.epochs"]
    assert str(error) == "; ".join(error.problems) and "\n" not in str(error)


def test_profile_and_kind_dependent_requirements(tmp_path: Path):
    long_table = with_value(with_value(COMMITTED, "ingest.dataset", "long_table"), "ingest.source", "rows.csv")
    problems = schema.problems(long_table)
    assert problems == [
        "params.yaml: ingest.id_column: the long_table profile needs a column name here, not null",
        "params.yaml: ingest.order_column: the long_table profile needs a column name here, not null",
        "params.yaml: ingest.feature_columns: the long_table profile needs a non-empty list of the numeric columns of each "
        "step, not []",
    ]
    brown = with_value(with_value(COMMITTED, "ingest.dataset", "brown"), "pretrain.source", ["train"])
    assert schema.problems(brown) == [
        "params.yaml: pretrain.source: must be [] for language_model data (pretraining is for text classifiers), not ['train']"]
    clothing = with_value(with_value(COMMITTED, "ingest.dataset", "clothing_reviews"), "ingest.negative_below", 4)
    assert schema.problems(clothing) == [
        "params.yaml: ingest.positive_above: must be >= ingest.negative_below (4), not 3"]
    # A kind's subsection may override a shared key; checks see the merged settings.
    overridden = with_value(COMMITTED, "clean.language_model.validation_fraction", 0.85)
    assert schema.problems(overridden) == [
        "params.yaml: clean.test_fraction: clean.language_model.validation_fraction + clean.test_fraction must be below 1 "
        "(the rest is the train split), not 0.85 + 0.2"]
    assert schema.problems(with_value(COMMITTED, "train.language_model.seed", 7)) == []


def test_partial_files_sections_and_nulls(tmp_path: Path):
    # A section the file lacks is the reading stage's error, not the schema's (unit tests write one section).
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"validate": {"min_rows": 3}}))
    assert load_params("validate", path) == {"min_rows": 3}
    with pytest.raises(PipelineError, match="no 'train' section"):
        load_params("train", path)
    assert schema.problems({"validate": {"drift": None}, "promote": None}) == []
    assert schema.problems(["ingest"]) == [
        "params.yaml: must be a mapping of sections (ingest, validate, clean, tokenize, baseline, pretrain, train, evaluate, "
        "promote), not ['ingest']"]
    path.write_text("train: [unclosed\n")
    with pytest.raises(PipelineError, match=r"^params.yaml: not valid YAML: ") as error:
        load_params("train", path)
    assert "\n" not in str(error.value)


def test_load_params_checks_once_and_returns_fresh_copies(tmp_path: Path, monkeypatch):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(COMMITTED, sort_keys=False))
    calls = []
    original = schema.check
    monkeypatch.setattr(schema, "check", lambda *args: calls.append(1) or original(*args))
    train = load_params("train", path)
    train["text_classification"]["epochs"] = 99
    assert load_params("train", path)["text_classification"]["epochs"] == COMMITTED["train"]["text_classification"]["epochs"]
    assert len(calls) == 1
    path.write_text(yaml.safe_dump(with_value(COMMITTED, "train.text_classification.epochs", 0), sort_keys=False))
    with pytest.raises(PipelineError, match="epochs: must be an integer >= 1, not 0"):
        load_params("ingest", path)  # a changed file is checked again, whichever section is asked for


def test_a_stage_prints_one_line_and_exits_2(tmp_path: Path, monkeypatch, capsys):
    from tasks import source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_value(COMMITTED, "ingest.text_columns", []), sort_keys=False))
    with pytest.raises(SystemExit) as exit_info:
        run_main(source.main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == ("error: params.yaml: ingest.text_columns: must be a non-empty list of column names, "
                                       "not []\n")
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]  # nothing written


# --------------------------------------------------------------------------- the schema agrees with the code


def test_dataset_names_and_kinds_match_the_profiles():
    from tasks import kinds
    from tasks.readers import profiles

    assert schema.DATASETS == {name: profile.kind for name, profile in profiles.PROFILES.items()}
    assert schema.KINDS == kinds.KINDS


def test_suite_parameters_and_drift_defaults_match_validate():
    from tasks.checks import drift as drift_checks
    from tasks.checks import suite as suite_checks

    for kind, names in schema.SUITE_PARAMETERS.items():
        suite = suite_checks.load_suite(suite_checks.SUITE_DIR / f"{kind}.json")
        assert sorted(names) == [name for name in suite_checks.referenced_parameters(suite)
                                 if name not in suite_checks.DATA_PARAMETERS]
    drift = schema.DRIFT.keys
    assert set(drift) == set(drift_checks.DRIFT_DEFAULTS)
    for name, default in drift_checks.DRIFT_DEFAULTS.items():
        entry = drift[name]
        got = {level: key.default for level, key in entry.keys.items()} if isinstance(entry, schema.Section) else entry.default
        assert got == default, name


def test_option_dataclasses_match_the_clean_subsections():
    from tasks.inputs.series import SeriesOptions
    from tasks.inputs.textclean import CleanOptions, CorpusOptions

    for options, kind, extra in ((CleanOptions, "text_classification", set()),
                                 (SeriesOptions, "series_classification", {"stratify"}),
                                 (CorpusOptions, "language_model", {"split"})):
        keys = schema.CLEAN.kinds[kind].keys
        assert set(keys) == {f.name for f in fields(options)} | extra, kind
        for option in fields(options):
            default = keys[option.name].default
            assert (tuple(default) if isinstance(default, list) else default) == option.default, (kind, option.name)


def test_promote_defaults_match_the_gate():
    from flows.promote import DEFAULTS

    assert {name: key.default for name, key in schema.PROMOTE.keys.items()} == DEFAULTS


def test_importing_the_schema_is_cheap():
    code = ("import sys, time; started = time.perf_counter(); import tasks.core.schema; "
            "print(time.perf_counter() - started, sorted(m for m in sys.modules if m.startswith(('yaml', 'pydantic', 'numpy'))))")
    seconds, loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                     check=True).stdout.split(" ", 1)
    assert loaded.strip() == "[]"  # the standard library only
    assert float(seconds) < 0.1


# --------------------------------------------------------------------------- end to end


OUTPUT_FOLDERS = ("data", "models", "metrics", "dvclive", "plots", "reports", "baseline", "pretrained")


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every output file of the project (and dvc.lock)."""
    files = [path for folder in OUTPUT_FOLDERS for path in (root / folder).rglob("*") if path.is_file()]
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted([*files, root / "dvc.lock"])}


def test_dvc_repro_with_a_bad_value_stops_at_the_first_stage_and_changes_nothing(trained_copy: Path):
    root = trained_copy
    good = (root / "params.yaml").read_text()
    before = snapshot(root)
    assert any(name.startswith("models/") for name in before) and "data/source.json" in before
    bad_values = [
        ("train.text_classification.epochs", 0, "train.text_classification.epochs: must be an integer >= 1, not 0"),
        ("train.text_classification.epoch", 3, "train.text_classification.epoch: unknown key; did you mean 'epochs'?"),
    ]
    try:
        for dotted, value, message in bad_values:
            params = with_value(yaml.safe_load(good), dotted, value)
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            result = run(["dvc", "repro"], root, check=False)
            assert result.returncode != 0, result.stdout
            assert f"error: params.yaml: {message}\n" in result.stderr, result.stderr
            assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [f"error: params.yaml: {message}"]
            assert "Traceback" not in result.stderr
            assert "failed to reproduce 'source'" in result.stderr, result.stderr
            assert "Running stage 'ingest'" not in result.stdout
            assert snapshot(root) == before, dotted
    finally:
        (root / "params.yaml").write_text(good)
