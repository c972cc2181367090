"""Every kind's every part provides what the kind contract (tasks/kinds/contract.py) says, and the
kinds' code stays apart: a stage of one kind imports no other kind's files, the data stages import
no model code, and the classifiers' scoring (evaluate, predict) imports no training code."""
from __future__ import annotations

import inspect
import typing
from inspect import Parameter

import pytest

from conftest import ROOT
from tasks import kinds
from tasks.core.stagecode import closure
from tasks.kinds import contract

POSITIONAL = (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD)
CLASSIFIERS = ("text_classification", "series_classification")
DATA_STAGES = ("ingest", "validate", "clean", "tokenize")
MODEL_STAGES = ("baseline", "train", "evaluate", "predict")
TRAINING_CODE = ("tasks/networks/fit.py", "tasks/networks/training.py")


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    """A Protocol's methods, each signature without ``self``."""
    methods = {}
    for name, member in vars(protocol).items():
        if inspect.isfunction(member) and not name.startswith("_"):
            signature = inspect.signature(member)
            methods[name] = signature.replace(parameters=list(signature.parameters.values())[1:])
    return methods


def protocol_attributes(protocol: type) -> dict[str, typing.Any]:
    """A Protocol's annotated attributes (``SUITE: str``) and their types."""
    return typing.get_type_hints(protocol)


def mismatches(function, expected: inspect.Signature) -> list[str]:
    """Why ``function`` cannot be called as ``expected`` says (empty when it can).

    The positional parameters are the Protocol's, same names, same order, same kinds; a default
    the Protocol gives the function gives too (the same value); each keyword-only one the function
    takes by that name (or through ``**kwargs``); ``**kwargs`` in the Protocol needs one in the
    function. Whatever else the function takes must come after them and be optional."""
    actual = inspect.signature(function)
    own = list(actual.parameters.values())
    wanted = list(expected.parameters.values())
    problems = []
    wanted_positional = [parameter for parameter in wanted if parameter.kind in POSITIONAL]
    own_positional = [parameter for parameter in own if parameter.kind in POSITIONAL]
    for index, parameter in enumerate(wanted_positional):
        if index >= len(own_positional):
            problems.append(f"no parameter {parameter.name!r} (position {index + 1})")
            continue
        found = own_positional[index]
        if (found.name, found.kind) != (parameter.name, parameter.kind):
            problems.append(f"position {index + 1} is {found.name!r} ({found.kind.description}), "
                            f"not {parameter.name!r} ({parameter.kind.description})")
        elif parameter.default is not Parameter.empty and found.default != parameter.default:
            problems.append(f"{parameter.name!r} must default to {parameter.default!r}")
    takes_any_keyword = any(parameter.kind is Parameter.VAR_KEYWORD for parameter in own)
    named = {parameter.name for parameter in wanted}
    for parameter in wanted:
        if parameter.kind is Parameter.KEYWORD_ONLY:
            found = actual.parameters.get(parameter.name)
            if found is None:
                if not takes_any_keyword:
                    problems.append(f"takes no keyword {parameter.name!r}")
            elif found.kind not in (Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY):
                problems.append(f"{parameter.name!r} is {found.kind.description}, not a keyword")
            elif parameter.default is not Parameter.empty and found.default != parameter.default:
                problems.append(f"{parameter.name!r} must default to {parameter.default!r}")
        elif parameter.kind is Parameter.VAR_KEYWORD and not takes_any_keyword:
            problems.append(f"takes no **{parameter.name}")
        elif parameter.kind is Parameter.VAR_POSITIONAL and not any(p.kind is Parameter.VAR_POSITIONAL for p in own):
            problems.append(f"takes no *{parameter.name}")
    extra = own_positional[len(wanted_positional):] + [
        parameter for parameter in own if parameter.kind is Parameter.KEYWORD_ONLY and parameter.name not in named]
    problems += [f"its own parameter {parameter.name!r} has no default" for parameter in extra
                 if parameter.default is Parameter.empty]
    return problems


def test_the_contract_has_a_protocol_for_every_part():
    assert tuple(contract.PARTS) == kinds.PARTS
    for protocol in contract.PARTS.values():
        assert protocol_methods(protocol), protocol


@pytest.mark.parametrize("stage", kinds.PARTS)
@pytest.mark.parametrize("kind", kinds.KINDS)
def test_each_part_defines_the_protocol_of_its_stage(kind: str, stage: str):
    part = kinds.part(kind, stage)
    protocol = contract.PARTS[stage]
    for name, signature in protocol_methods(protocol).items():
        function = getattr(part, name, None)
        assert callable(function), f"{part.__name__} defines no {name}() ({protocol.__name__})"
        problems = mismatches(function, signature)
        assert not problems, (f"{part.__name__}.{name}{inspect.signature(function)} against "
                              f"{protocol.__name__}.{name}{signature}: {'; '.join(problems)}")
    for name, kind_of_value in protocol_attributes(protocol).items():
        assert hasattr(part, name), f"{part.__name__} defines no {name} ({protocol.__name__})"
        if isinstance(kind_of_value, type):
            assert isinstance(getattr(part, name), kind_of_value), f"{part.__name__}.{name} is not a {kind_of_value.__name__}"


def _signature(function) -> inspect.Signature:
    return inspect.signature(function)


def test_the_signature_check_names_what_does_not_fit():
    """The check itself: each way a part's function can break a Protocol is found and said."""
    def protocol(frame, metadata, *, text_column: str = "text"):
        """What a stage calls (as a Protocol method without self)."""
    expected = _signature(protocol)

    def same(frame, metadata, *, text_column: str = "text"): ...
    def extra_optional(frame, metadata, devices=None, **_): ...
    def missing(frame): ...
    def renamed(table, metadata, **_): ...
    def reordered(metadata, frame, **_): ...
    def extra_required(frame, metadata, devices, **_): ...
    def keyword_only(frame, *, metadata, **_): ...
    def no_keyword(frame, metadata): ...
    def other_default(frame, metadata, text_column: str = "body"): ...

    assert mismatches(same, expected) == []
    assert mismatches(extra_optional, expected) == []
    assert mismatches(missing, expected) == ["no parameter 'metadata' (position 2)", "takes no keyword 'text_column'"]
    assert mismatches(renamed, expected) == ["position 1 is 'table' (positional or keyword), not 'frame' (positional or keyword)"]
    assert len(mismatches(reordered, expected)) == 2
    assert mismatches(extra_required, expected) == ["its own parameter 'devices' has no default"]
    assert mismatches(keyword_only, expected) == ["no parameter 'metadata' (position 2)"]
    assert mismatches(no_keyword, expected) == ["takes no keyword 'text_column'"]
    assert mismatches(other_default, expected) == ["'text_column' must default to 'text'"]

    def takes_options(source, **options): ...
    assert mismatches(missing, _signature(takes_options)) == ["position 1 is 'frame' (positional or keyword), "
                                                              "not 'source' (positional or keyword)", "takes no **options"]


def stage_closure(kind: str, stage: str) -> list[str]:
    """What ``tasks/<stage>.py`` running ``kind``'s part can import (predict: the CLI, tasks/predict.py)."""
    return closure([f"tasks.{stage}", f"tasks.kinds.{kind}.{stage}"], ROOT)


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_no_stage_of_a_kind_imports_another_kind(kind: str):
    others = [f"tasks/kinds/{other}/" for other in kinds.KINDS if other != kind]
    for stage in kinds.PARTS:
        files = stage_closure(kind, stage)
        assert not [path for path in files if path.startswith(tuple(others))], (kind, stage)


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_data_stages_import_no_model_code(kind: str):
    """A change to a network, a baseline or a model-side part never reruns ingest to tokenize."""
    model_side = ("tasks/networks/", "tasks/baselines/", "tasks/targets/classification.py", "tasks/targets/classifier/",
                  *(f"tasks/kinds/{any_kind}/{stage}.py" for any_kind in kinds.KINDS for stage in MODEL_STAGES))
    for stage in DATA_STAGES:
        files = stage_closure(kind, stage)
        assert not [path for path in files if path.startswith(model_side)], (kind, stage)


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_classifiers_scoring_imports_no_training_code(kind: str):
    """Evaluate and predict load the served model only: editing the training loop reruns train alone."""
    for stage in ("evaluate", "predict"):
        files = stage_closure(kind, stage)
        assert not set(TRAINING_CODE) & set(files), (kind, stage)
        assert f"tasks/kinds/{kind}/train.py" not in files and "tasks/targets/classifier/train.py" not in files
    assert set(TRAINING_CODE) <= set(stage_closure(kind, "train"))
    evaluate = stage_closure(kind, "evaluate")  # nor what predict reads and writes (the readers, the output columns)
    assert f"tasks/kinds/{kind}/predict.py" not in evaluate and "tasks/targets/classifier/predict.py" not in evaluate
