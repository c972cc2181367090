"""What a request may hold, checked before any model runs.

Every problem is a :class:`RequestError` with the HTTP status and one line naming the row and
field (``rows[3].text: missing``), so a bad request is answered and never reaches the model.
Requests carry data only: nothing in them names a file.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

# tasks.generate's bounds (its --words limit), for the same settings over HTTP; a copy, because
# nothing may import an entry point (tests/test_stage_deps.py).
MAX_WORDS = 10_000


class RequestError(Exception):
    """A request the service refuses: ``status`` (4xx) and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def request_rows(body: Any, max_rows: int) -> list[Any]:
    """The ``rows`` list of a ``/predict`` body, at most ``max_rows`` of them."""
    if not isinstance(body, dict) or "rows" not in body:
        raise RequestError(422, 'the body must be a JSON object {"rows": [...]}')
    unknown = sorted(set(body) - {"rows"})
    if unknown:
        raise RequestError(422, f"unknown field '{unknown[0]}'; the body holds only \"rows\"")
    rows = body["rows"]
    if not isinstance(rows, list) or not rows:
        raise RequestError(422, "rows: must be a non-empty list of objects")
    if len(rows) > max_rows:
        raise RequestError(413, f"rows: {len(rows)} rows; at most {max_rows} per request (--max-rows)")
    return rows


def _row_field(rows: list[Any], index: int, field: str) -> Any:
    row = rows[index]
    if not isinstance(row, dict):
        raise RequestError(422, f"rows[{index}]: must be an object with a \"{field}\" field, not {type(row).__name__}")
    if field not in row:
        raise RequestError(422, f"rows[{index}].{field}: missing")
    unknown = sorted(set(row) - {field})
    if unknown:
        raise RequestError(422, f"rows[{index}].{unknown[0]}: unknown field; a row holds only \"{field}\"")
    return row[field]


def text_rows(rows: list[Any], card: dict[str, Any]) -> list[str]:
    """Each row's ``text`` (a string; an empty one is scored, as ``tasks.predict`` scores an empty
    cell). ``card``: the model card (a text model needs nothing from it)."""
    texts = []
    for index in range(len(rows)):
        text = _row_field(rows, index, "text")
        if not isinstance(text, str):
            raise RequestError(422, f"rows[{index}].text: must be a string, not {_json_type(text)}")
        texts.append(text)
    return texts


def series_rows(rows: list[Any], card: dict[str, Any]) -> list[np.ndarray]:
    """Each row's ``values``: a non-empty list of steps, each a list of the card's ``n_features``
    numbers (``null`` for a missing value, filled as the training cleaning fills it)."""
    n_features = int(card["n_features"])
    series = []
    for index in range(len(rows)):
        where = f"rows[{index}].values"
        steps = _row_field(rows, index, "values")
        if not isinstance(steps, list) or not steps:
            raise RequestError(422, f"{where}: must be a non-empty list of steps (each a list of {n_features} numbers)")
        for step_index, step in enumerate(steps):
            if not isinstance(step, list) or len(step) != n_features:
                raise RequestError(422, f"{where}[{step_index}]: must be a list of {n_features} numbers (the model's "
                                        f"features), not {_json_type(step)}{_length(step)}")
            for feature, value in enumerate(step):
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value)):
                    raise RequestError(422, f"{where}[{step_index}][{feature}]: must be a finite number or null, "
                                            f"not {value!r}")
        array = np.array([[math.nan if value is None else value for value in step] for step in steps], np.float32)
        if np.isnan(array).all():
            raise RequestError(422, f"{where}: every value is missing")
        series.append(array)
    return series


def generate_settings(body: Any) -> dict[str, Any]:
    """``/generate``'s settings, as ``tasks.generate`` takes them: ``prompt`` (not empty), ``words``
    (0 to 10,000, default 20), ``temperature`` (above 0, default 1), ``top_k`` (null or >= 1) and
    ``seed`` (>= 0, default 0)."""
    if not isinstance(body, dict):
        raise RequestError(422, 'the body must be a JSON object {"prompt": "...", "words": 20, ...}')
    settings = {"words": 20, "temperature": 1.0, "top_k": None, "seed": 0, **body}
    unknown = sorted(set(settings) - {"prompt", "words", "temperature", "top_k", "seed"})
    if unknown:
        raise RequestError(422, f"{unknown[0]}: unknown field; known: prompt, words, temperature, top_k, seed")
    prompt = settings.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError(422, "prompt: must be a non-empty string, e.g. \"the jury said\"")
    for name in ("words", "seed", "top_k"):
        value = settings[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise RequestError(422, f"{name}: must be an integer, not {_json_type(value)}")
    if settings["words"] is None or not 0 <= settings["words"] <= MAX_WORDS:
        raise RequestError(422, f"words: must be between 0 and {MAX_WORDS}, not {settings['words']}")
    temperature = settings["temperature"]
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise RequestError(422, f"temperature: must be a finite number above 0, not {temperature!r}")
    if settings["top_k"] is not None and settings["top_k"] < 1:
        raise RequestError(422, f"top_k: must be a positive integer or null, not {settings['top_k']}")
    if settings["seed"] is None or settings["seed"] < 0:
        raise RequestError(422, f"seed: must be 0 or more, not {settings['seed']}")
    return {**settings, "temperature": float(temperature)}


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _length(value: Any) -> str:
    return f" of {len(value)}" if isinstance(value, list) else ""
