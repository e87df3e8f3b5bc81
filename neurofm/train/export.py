"""Export the pretrained backbone as a Hub-style model directory with a model card.

``model/`` holds ``config.json`` (architecture + the preprocessing of the corpus the model saw,
which evaluation applies by default), ``model.safetensors`` and ``README.md``: a model card
recording the data, the number of steps and windows, the objective and the final loss.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from neurofm._version import __version__


def export_pretrained(model, directory: str | Path, *, preprocessing: dict, summary: dict
                      ) -> Path:
    """Write ``config.json`` + ``model.safetensors`` + ``README.md`` to ``directory``.

    Parameters
    ----------
    model : neurofm.models.base.BrainEncoder
        The backbone (unwrapped, full weights).
    directory : str or Path
    preprocessing : dict
        Corpus preprocessing (``sfreq``, ``patch_size``, band, notch, scales ...).
    summary : dict
        Training facts for the card: ``data``, ``n_windows``, ``steps``, ``global_batch``,
        ``world_size``, ``objective``, ``objective_description`` (the objective's
        ``describe()``), ``optim``, ``final_loss``, ``config``.
    """
    directory = Path(directory)
    model.save_pretrained(directory, preprocessing=preprocessing)
    card = model_card(model, preprocessing, summary)
    tmp = directory / ".README.md.tmp"
    tmp.write_text(card, encoding="utf-8")
    os.replace(tmp, directory / "README.md")
    return directory


def model_card(model, preprocessing: dict, summary: dict) -> str:
    """Markdown model card with a YAML header the Hugging Face Hub reads."""
    name = getattr(model, "model_name", None) or type(model).__name__
    n_params = sum(p.numel() for p in model.parameters())
    optim = summary["optim"]
    pre_lines = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in sorted(preprocessing.items()))
    config_yaml = json.dumps(summary["config"], indent=2)
    return f"""---
library_name: neurofm
tags:
- eeg
- meg
- ieeg
- brain-signals
- foundation-model
- masked-autoencoder
---

# {name} pretrained with neurofm

A `{name}` backbone ({n_params:,} parameters) pretrained by masked modelling with
[neurofm](https://github.com/neurofm/neurofm) {__version__}.

## Data

- Corpus: {summary['data']}
- Windows in the corpus: {summary['n_windows']:,}
- Preprocessing (also in `config.json`, applied by evaluation by default):

| parameter | value |
|---|---|
{pre_lines}

## Training

- Objective: {summary['objective_description']}
- Steps: {summary['steps']:,} optimizer steps of {summary['global_batch']} windows
  ({summary['steps'] * summary['global_batch']:,} windows seen) on {summary['world_size']} rank(s).
- Optimizer: AdamW, peak lr {optim['lr']:g}, weight decay {optim['weight_decay']:g}, linear warmup
  {optim['warmup_steps']} steps then cosine to {optim['min_lr']:g}, gradient clipping at
  {optim['grad_clip']:g}.
- Final training loss: {summary['final_loss']:.6g}
- Finished: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}

## Use

```python
from neurofm.models import from_pretrained

model = from_pretrained("path/to/this/directory")
features = model(x, sensors)  # x [B, C, N, P], sensors: neurofm.sensors.SensorBatch
```

## Training configuration

```json
{config_yaml}
```
"""
