"""Text classification: a document in, one of K classes out (two classes: a tuned threshold).

Input: text (NLTK cleaning, :mod:`tasks.inputs.textclean`; the vocabulary, :mod:`tasks.inputs.vocabulary`).
Target: classes (:mod:`tasks.targets.classification`; the stages it shares with series
classification, :mod:`tasks.targets.classifier`). The saved model takes cleaned text (the
vocabulary is inside, in a TextVectorization layer) and returns class probabilities.
"""

BASELINE_FILE = "tfidf_logistic.npz"  # the baseline stage's model, copied beside an ensembled RNN
