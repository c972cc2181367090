"""A loaded model version and the answers it gives.

A classifier answers with its kind's ``Predictor`` (the one ``tasks.predict`` loads: cleaning,
RNN, baseline mix and threshold as the card records them), in the fields ``tasks.predict``
writes as columns: ``label`` and ``probability`` (two classes) or ``probability_<class>`` per
class, rounded the same way. A language model continues a prompt with its kind's ``Generator``,
as ``tasks.generate`` does.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tasks import kinds
from tasks.core.artifacts import read_card
from tasks.serving import rows as checks
from tasks.serving.rows import RequestError


@dataclass(frozen=True)
class ClassifierInputs:
    """How a classifying kind reads request rows, and how ``tasks.predict`` writes its label:
    ``label_as_index``: two classes answer 0/1 (text, as its predict writes them) instead of the
    class name (series)."""

    read_rows: Callable[[list[Any], dict[str, Any]], list]
    warm_up_rows: Callable[[dict[str, Any]], list[dict[str, Any]]]  # the card -> rows that trace the graph
    label_as_index: bool


class Batcher:
    """One model call at a time, in a worker thread of its own; requests that arrive while it
    runs are answered together by the next call (dynamic batching), in arrival order, so
    concurrent clients share the model's per-call cost and none waits behind later ones.

    ``score(items) -> array`` scores a list of items (one row of the result per item);
    :meth:`__call__` returns exactly the rows of its own items, as if scored alone: a row's answer
    does not depend on its batch (both kinds' predictors score rows independently). :meth:`close`
    lets the requests already queued finish, then ends the worker.
    """

    def __init__(self, score: Callable[[list], np.ndarray], max_items: int = 1024) -> None:
        self._score, self._max_items = score, max_items
        self._queue: queue.Queue[Any] = queue.Queue()  # tickets, then _CLOSE
        self._closing, self._closed = threading.Lock(), False
        threading.Thread(target=self._work, name="rnnflow-model-calls", daemon=True).start()

    def __call__(self, items: list) -> np.ndarray:
        ticket = _Ticket(items)
        with self._closing:
            queued = not self._closed
            if queued:
                self._queue.put(ticket)
        if not queued:  # it read this version before a swap and arrived after it: answered here
            return np.asarray(self._score(items))
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def close(self) -> None:
        with self._closing:
            self._closed = True
            self._queue.put(_CLOSE)  # after every queued ticket: those are answered first

    def _work(self) -> None:
        held: Any = None  # what the last call had no room for: the next call starts with it
        while True:
            first, held = held or self._queue.get(), None
            if first is _CLOSE:
                return
            taken, size = [first], len(first.items)
            while held is None:
                try:
                    ticket = self._queue.get_nowait()
                except queue.Empty:
                    break
                if ticket is not _CLOSE and size + len(ticket.items) <= self._max_items:
                    taken.append(ticket)
                    size += len(ticket.items)
                else:
                    held = ticket
            self._answer(taken)

    def _answer(self, taken: list[_Ticket]) -> None:
        try:
            scored = np.asarray(self._score([item for ticket in taken for item in ticket.items]))
            start = 0
            for ticket in taken:
                ticket.result, start = scored[start : start + len(ticket.items)], start + len(ticket.items)
        except Exception as error:  # every request of the call gets the error; the worker goes on
            for ticket in taken:
                ticket.error = error
        for ticket in taken:
            ticket.done.set()


_CLOSE = object()


class _Ticket:
    def __init__(self, items: list) -> None:
        self.items, self.result, self.error, self.done = items, None, None, threading.Event()


class ServedVersion:
    """One model version in memory: its description (``info``: name, version, stage, metrics...)
    and its answers. One model call at a time per version (a classifier's concurrent requests
    share calls: :class:`Batcher`)."""

    def __init__(self, model_dir: Path, info: dict[str, Any]) -> None:
        self.card = read_card(model_dir)
        self.kind = kinds.kind_of(self.card)
        self.info = {**info, "kind": self.kind}

    def describe(self) -> dict[str, Any]:
        return self.info

    def close(self) -> None:
        """Called once this version is swapped out: what it still has queued is answered first."""

    def predict(self, rows: list[Any]) -> list[dict[str, Any]]:
        raise RequestError(409, f"the model is a {self.kind} model: it continues text; POST /generate")

    def generate(self, settings: dict[str, Any]) -> dict[str, Any]:
        raise RequestError(409, f"the model is a {self.kind} model: it classifies; POST /predict")


class ClassifierVersion(ServedVersion):
    def __init__(self, model_dir: Path, info: dict[str, Any], inputs: ClassifierInputs) -> None:
        super().__init__(model_dir, info)
        self.inputs = inputs
        self.predictor = kinds.part(self.kind, "predict").Predictor(model_dir)
        self._batcher = Batcher(self.predictor.probabilities)
        from tasks.serving.export import why_not_exportable

        why_not = why_not_exportable(self.kind, self.predictor, self.card)
        self.info.update(classes=self.predictor.classes, threshold=self.predictor.threshold,
                         ensemble=self.predictor.ensemble,
                         savedmodel="exportable (python -m tasks.serve --export-savedmodel DIR)" if why_not is None
                         else f"not exportable: {why_not}")
        self.predict(inputs.warm_up_rows(self.card))  # trace the graph before the first request

    def close(self) -> None:
        self._batcher.close()

    def predict(self, rows: list[Any]) -> list[dict[str, Any]]:
        """One answer per row, in order (the rows checked first: a bad one answers 422)."""
        from tasks.targets.classification import predictions
        from tasks.targets.classifier.predict import probability_columns
        from tasks.targets.labels import is_binary

        probabilities = self._batcher(self.inputs.read_rows(rows, self.card))
        classes = self.predictor.classes
        predicted = predictions(probabilities, self.predictor.threshold)
        labels = predicted.tolist() if self.inputs.label_as_index and is_binary(classes) \
            else [classes[index] for index in predicted]
        columns = probability_columns(probabilities, classes)
        # round(float, 6): the number predict's CSV holds (a float32 rounded to 6 places, as written)
        return [{"label": label, **{name: round(float(values[row]), 6) for name, values in columns.items()}}
                for row, label in enumerate(labels)]


class LanguageModelVersion(ServedVersion):
    def __init__(self, model_dir: Path, info: dict[str, Any]) -> None:
        super().__init__(model_dir, info)
        self.generator = kinds.part(self.kind, "predict").Generator(model_dir)
        self._lock = threading.Lock()  # one generation at a time: the model keeps its state per call
        self.generate(checks.generate_settings({"prompt": "the", "words": 1}))  # trace before serving

    def generate(self, settings: dict[str, Any]) -> dict[str, Any]:
        """``tasks.generate --json``'s answer for the same prompt, words, temperature, top-k and seed."""
        with self._lock:
            return self.generator.continue_text(settings["prompt"], settings["words"], settings["temperature"],
                                                settings["top_k"], settings["seed"])


# What each kind serves with. A kind missing here cannot be served (load_version says so).
SERVED: dict[str, Callable[[Path, dict[str, Any]], ServedVersion]] = {
    "text_classification": lambda model_dir, info: ClassifierVersion(model_dir, info, ClassifierInputs(
        checks.text_rows, lambda card: [{"text": "warm up"}], label_as_index=True)),
    "series_classification": lambda model_dir, info: ClassifierVersion(model_dir, info, ClassifierInputs(
        checks.series_rows, lambda card: [{"values": [[0.0] * int(card["n_features"])] * 2}], label_as_index=False)),
    "language_model": LanguageModelVersion,
}


def load_version(model_dir: Path, info: dict[str, Any]) -> ServedVersion:
    """The model in ``model_dir`` loaded (safe mode, as ``tasks.predict`` loads it) and warmed up."""
    kind = kinds.kind_of(read_card(model_dir))
    return SERVED[kind](Path(model_dir), info)
