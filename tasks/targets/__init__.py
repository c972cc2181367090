"""What the models predict: classes (text and series classifiers alike).

- :mod:`tasks.targets.labels`: class labels as the data stages keep them (the ingest summary's
  counts, the arrays Keras takes); nothing a model computes.
- :mod:`tasks.targets.classification`: a class decision and its metrics (thresholds tuned on
  validation, accuracy, macro-F1, ROC-AUC...).
- :mod:`tasks.targets.classifier`: what the two classifying kinds' stages share, one module per
  stage (baseline, train, evaluate, predict), so that a kind part keeps only what differs and a
  stage imports only its own stage's code.

The next token (language models) is :mod:`tasks.networks.lm`'s target.
"""

# The baseline stage's validation probabilities, in data/clean/validation.parquet's row order:
# what an ensemble of a recurrent classifier with its baseline is weighted on. Every kind's
# baseline writes the file (a language model's is empty), because the train stage depends on it.
VALIDATION_PROBABILITIES = "validation_probabilities.npy"
