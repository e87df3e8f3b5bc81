"""Export the pretrained backbone as a Hub-style model folder with a model card.

``model/`` holds ``config.json`` (architecture + the preprocessing of the corpus the model saw,
which evaluation applies by default), ``model.safetensors`` and ``README.md``: the model card
(:mod:`neurofm.model_folder.card`) with the training run in its text -- the data, the number of
windows and steps, the objective, the optimiser, the final loss and the configuration.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

#: Hub tags of a backbone pretrained with neurofm.
PRETRAINED_TAGS = ("meg", "ieeg", "foundation-model", "masked-autoencoder")


def export_pretrained(model, directory: str | Path, *, preprocessing, summary: dict) -> Path:
    """Write ``config.json`` + ``model.safetensors`` + ``README.md`` to ``directory``.

    Parameters
    ----------
    model : neurofm.models.BrainEncoder
        The backbone (unwrapped, full weights).
    directory : str or Path
    preprocessing : PreprocessSpec or dict
        Corpus preprocessing (sampling rate, patch length, band, notch, scales ...).
    summary : dict
        Training facts for the card: ``data``, ``n_windows``, ``steps``, ``global_batch``,
        ``world_size``, ``objective_description`` (the objective's ``describe()``), ``optim``,
        ``final_loss``, ``config``.

    Returns
    -------
    Path of the folder.
    """
    card = {"training_data": training_data_text(summary),
            "objective": summary["objective_description"],
            "training": training_text(summary), "tags": PRETRAINED_TAGS}
    return model.save_pretrained(directory, preprocessing=preprocessing, model_card_kwargs=card)


def training_data_text(summary: dict) -> str:
    """The card's training-data section: the corpus and its size."""
    return (f"- Corpus: {summary['data']}\n"
            f"- Windows in the corpus: {summary['n_windows']:,}")


def training_text(summary: dict) -> str:
    """The card's training section: steps, optimiser, final loss and the run's configuration."""
    optim = summary["optim"]
    seen = summary["steps"] * summary["global_batch"]
    return "\n".join([
        (f"- Steps: {summary['steps']:,} optimizer steps of {summary['global_batch']} windows "
         f"({seen:,} windows seen) on {summary['world_size']} rank(s)."),
        (f"- Optimizer: AdamW, peak lr {optim['lr']:g}, weight decay {optim['weight_decay']:g}, "
         f"linear warmup {optim['warmup_steps']} steps then cosine to {optim['min_lr']:g}, "
         f"gradient clipping at {optim['grad_clip']:g}."),
        f"- Final training loss: {summary['final_loss']:.6g}",
        f"- Finished: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "", "Training configuration:", "", "```json",
        json.dumps(summary["config"], indent=2), "```"])
