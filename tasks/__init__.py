"""rnnflow pipeline stages: one module per DVC stage, each with a ``main()``."""
import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) buries the stage's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
