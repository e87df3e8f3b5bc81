"""Model cards: the ``README.md`` a Hub model repository shows.

:func:`write_model_card` fills a card from the directory's ``config.json`` (architecture,
hyperparameters, preprocessing, neurofm version) and ``model.safetensors`` header (parameter
count), plus what only the author knows: intended use, training data, objective, metrics. The
YAML front matter (``library_name: neurofm``, tags, license, base model) is what the Hub indexes.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from neurofm.hub.files import CARD_NAME, WEIGHTS_NAME, check_safetensors

_NOT_GIVEN = "Not documented by the author."


def count_parameters(weights_path) -> int:
    """Number of values stored in a safetensors file (read from its header, no tensor loaded)."""
    header = check_safetensors(weights_path)
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        n = 1
        for dim in entry["shape"]:
            n *= int(dim)
        total += n
    return total


def _metrics_rows(metrics: dict) -> list[str]:
    rows = ["| Task | Metric | Value |", "|---|---|---|"]
    for task, values in metrics.items():
        if isinstance(values, dict):
            rows += [f"| {task} | {m} | {v:.4g} |" if isinstance(v, float) else
                     f"| {task} | {m} | {v} |" for m, v in values.items()]
        else:
            rows.append(f"| - | {task} | {values:.4g} |" if isinstance(values, float)
                        else f"| - | {task} | {values} |")
    return rows


def render_model_card(config: dict, *, n_parameters: int | None = None,
                      repo_id: str | None = None, intended_use: str | None = None,
                      training_data: str | None = None, objective: str | None = None,
                      metrics: dict | None = None, notes: str | None = None,
                      license: str | None = None, base_model: str | None = None,
                      source: str | None = None, tags=()) -> str:
    """The model card text (YAML front matter + Markdown) for a ``config.json`` dict.

    Parameters
    ----------
    config : dict
        The model's or tokenizer's ``config.json``.
    n_parameters : int or None
        Stored parameter count.
    repo_id : str or None
        Hub repo id, used in the loading example (default: a placeholder).
    intended_use, training_data, objective, notes : str or None
        Free text for the corresponding sections.
    metrics : dict or None
        ``{task: {metric: value}}`` or ``{metric: value}``.
    license, base_model : str or None
        Hub metadata.
    source : str or None
        Where imported weights came from.
    tags : iterable of str
        Extra Hub tags.
    """
    name = config.get("architecture") or config.get("model_type", "neurofm model")
    meta = {"library_name": "neurofm",
            "tags": list(dict.fromkeys(["neurofm", "eeg", "brain-signals", str(name), *tags]))}
    if license:
        meta["license"] = license
    if base_model:
        meta["base_model"] = base_model
    front = yaml.safe_dump(meta, sort_keys=False).strip()
    pre = config.get("preprocessing") or {k: config[k] for k in ("sfreq", "patch_size")
                                          if k in config}
    hyper = config.get("hyperparameters") or {k: v for k, v in config.items()
                                              if k not in ("model_type", "preprocessing")}
    lines = [f"---\n{front}\n---", "", f"# {repo_id or name}", "",
             f"A neurofm `{name}` model"
             + (f" ({n_parameters:,} parameters)." if n_parameters else "."), ""]
    if source:
        lines += [f"Weights imported from `{source}`.", ""]
    lines += ["## Intended use", "", intended_use or _NOT_GIVEN, "",
              "## Training data", "", training_data or _NOT_GIVEN, "",
              "## Objective", "", objective or _NOT_GIVEN, "",
              "## Preprocessing the model expects", "",
              ("Prepare inputs the same way (`neurofm.hub.check_preprocessing` checks sampling "
               "rate and patch length):"), "", "| Setting | Value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(pre.items())]
    lines += ["", "## Metrics", ""]
    lines += _metrics_rows(metrics) if metrics else ["No evaluation reported."]
    lines += ["", "## Architecture", "", "```json", json.dumps(hyper, indent=2, sort_keys=True),
              "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    lines += ["## Usage", "", "```python", "import neurofm", "",
              f"model = neurofm.from_pretrained({(repo_id or 'ORG/NAME')!r})", "```", "",
              f"Written by neurofm {config.get('neurofm_version', '')}".rstrip() + ".", ""]
    return "\n".join(lines)


def write_model_card(directory, **fields) -> Path:
    """Write ``README.md`` into a model directory from its ``config.json`` and weights.

    Parameters
    ----------
    directory : str or Path
        A directory written by ``save_pretrained``.
    **fields
        Passed to :func:`render_model_card` (``intended_use``, ``training_data``,
        ``objective``, ``metrics``, ``notes``, ``license``, ``base_model``, ``repo_id``,
        ``source``, ``tags``).

    Returns
    -------
    Path of the card.
    """
    from neurofm.hub.loading import read_config

    directory = Path(directory)
    config = read_config(directory)
    weights = directory / WEIGHTS_NAME
    n_parameters = count_parameters(weights) if weights.is_file() else None
    path = directory / CARD_NAME
    path.write_text(render_model_card(config, n_parameters=n_parameters, **fields))
    return path

