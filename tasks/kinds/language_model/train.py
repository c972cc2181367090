"""Language model, train: truncated BPTT, the weights, the vocabulary and the card."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.core.common import read_parquet
from tasks.inputs import vocabulary
from tasks.kinds.language_model import token_stream
from tasks.networks import lm
from tasks.networks import lm_training


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Fit the recurrent language model (truncated BPTT) and save its weights, vocabulary and card."""
    from dvclive import Live
    from tasks.core.artifacts import PROGRESS_FILE, write_card
    from tasks.networks.training import configure_tensorflow, log_epoch

    lm_training.check_params(params, "train.language_model")
    device = configure_tensorflow(params)
    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    streams = {name: token_stream(read_parquet(tokenized_dir / f"{name}.parquet", "tokenize")) for name in ("train", "validation")}
    architecture = {key: params[key] for key in lm.ARCHITECTURE_KEYS}
    model = lm.build(meta["vocab_size"], architecture)
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        summary = lm_training.fit(model, streams["train"], streams["validation"], params, checkpoint_dir,
                         lambda epoch, resumed, logs: log_epoch(live, PROGRESS_FILE, epoch, params["epochs"], resumed, logs))
    model.save_weights(str(model_dir / lm.WEIGHTS_FILE))
    (model_dir / vocabulary.VOCAB_FILE).write_text(vocabulary.vocabulary_text(words), encoding="utf-8")
    write_card(model_dir, {
        "kind": meta["kind"],
        "vocab_size": meta["vocab_size"],
        "architecture": architecture,
        "clean": meta["clean"],
        "tokenized": meta.get("tokenized", False),
        "end_token": meta["end_token"],
        "history": summary["history"],
        "params": params,
    })
    return {**device, **{key: value for key, value in summary.items() if key != "history"},
            "train_tokens": int(len(streams["train"]))}
