"""Serving a trained model over HTTP (``python -m tasks.serve``).

The service answers with the kind's own served model (a classifier's ``Predictor``, a language
model's ``Generator``), the same objects ``tasks.predict`` and ``tasks.generate`` use, so the
HTTP answers and the batch CLI's columns are one decision:

- :mod:`tasks.serving.rows`: what a request may hold (rows, generation settings), checked before
  any model runs; a bad one is a :class:`~tasks.serving.rows.RequestError` naming row and field;
- :mod:`tasks.serving.service`: a loaded model version and the answers it gives;
- :mod:`tasks.serving.slot`: where versions come from (a folder, or a registry stage) and the
  hot swap (load the new version, then switch);
- :mod:`tasks.serving.app`: the FastAPI application (limits, bearer token, endpoints).
"""
