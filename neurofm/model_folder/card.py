"""``README.md`` of a model folder: the model card the Hub shows and indexes.

The card is a ``huggingface_hub.ModelCard``. Its metadata (``ModelCardData``): ``library_name:
neurofm``, tags, license, ``pipeline_tag: feature-extraction``, datasets, base model, and a
``model-index`` of evaluation results (``huggingface_hub.EvalResult``) when some are given. Its
text is filled from ``config.json`` (architecture, hyperparameters, preprocessing, neurofm
version) and the weights' header (parameter count), plus what only the author knows: intended
use, training data, objective, the training run, notes. Every writer of model folders (the
``save_pretrained`` method, pretraining's export, ``neurofm convert``, ``neurofm hub push``)
writes its card here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from neurofm.model_folder.config import TOKENIZER_MODEL_TYPE, VERSION_KEYS, read_config
from neurofm.model_folder.files import write_text_atomically
from neurofm.model_folder.weights import WEIGHTS_NAME, count_parameters
from neurofm.strict import check_keys

CARD_NAME = "README.md"
#: What the card says of a model that is not documented.
NOT_GIVEN = "Not documented by the author."
#: The Hub task of every neurofm model and tokenizer.
PIPELINE_TAG = "feature-extraction"
#: Keyword arguments :func:`model_card` takes (``model_card_kwargs`` of ``save_pretrained``).
CARD_FIELDS = ("repo_id", "intended_use", "training_data", "objective", "training", "metrics",
               "eval_results", "notes", "license", "datasets", "base_model", "source", "tags")
#: Sections of the card that hold a field's text: heading -> field.
SECTION_FIELDS = {"Intended use": "intended_use", "Training data": "training_data",
                  "Objective": "objective", "Training": "training", "Notes": "notes"}
#: Sections the card builds from config.json and the evaluation results.
GENERATED_SECTIONS = ("Usage", "Preprocessing the model expects", "Evaluation", "Architecture")
_SIGNATURE = re.compile(r"^Written by neurofm.*$", re.MULTILINE)


def eval_results_from_metrics(metrics: Mapping) -> list:
    """``{dataset: {metric: value}}`` as ``huggingface_hub.EvalResult`` entries.

    The task type is the models' pipeline tag (``feature-extraction``: neurofm evaluates the
    features, by a linear probe or fine-tuning).
    """
    from huggingface_hub import EvalResult

    results = []
    for dataset, values in metrics.items():
        if not isinstance(values, Mapping):  # bad content (e.g. JSON from the command line):
            raise ValueError(  # noqa: TRY004
                f"metrics[{dataset!r}] is {values!r}; give metrics per dataset, "
                'e.g. {"TUAB": {"balanced_accuracy": 0.79}}.')
        results += [EvalResult(task_type=PIPELINE_TAG, dataset_type=str(dataset),
                               dataset_name=str(dataset), metric_type=str(metric),
                               metric_value=value) for metric, value in values.items()]
    return results


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _evaluation_lines(eval_results: list) -> list[str]:
    if not eval_results:
        return ["No evaluation reported."]
    lines = ["| Dataset | Metric | Value |", "|---|---|---|"]
    return lines + [f"| {r.dataset_name} | {r.metric_name or r.metric_type} | "
                    f"{_value(r.metric_value)} |" for r in eval_results]


def _describe(config: dict) -> tuple[str, dict, dict, str]:
    """(name, preprocessing, architecture settings, usage line) of a config.json dict."""
    if config.get("model_type") == TOKENIZER_MODEL_TYPE:
        settings = {k: v for k, v in config.items()
                    if k not in ("model_type", "preprocessing", *VERSION_KEYS)}
        preprocessing = {"sfreq": config.get("sfreq"), "patch_size": config.get("patch_size"),
                         **(config.get("preprocessing") or {})}
        return ("neurofm tokenizer", preprocessing, settings,
                "codes = model.encode(x, sensors)  # x [B, C, N, P] -> codes [B, C, N, L]")
    return (str(config.get("architecture", "neurofm model")), config.get("preprocessing") or {},
            config.get("hyperparameters") or {},
            "features = model(x, sensors)  # x [B, C, N, P], sensors: neurofm.sensors.SensorBatch")


def model_card(config: dict, *, n_parameters: int | None = None, repo_id: str | None = None,
               intended_use: str | None = None, training_data: str | None = None,
               objective: str | None = None, training: str | None = None,
               metrics: Mapping | None = None, eval_results: list | None = None,
               notes: str | None = None, license: str | None = None,
               datasets: Iterable[str] | None = None, base_model: str | None = None,
               source: str | None = None, tags: Iterable[str] = ()):
    """The model card of a model or tokenizer described by ``config`` (a ``config.json`` dict).

    Parameters
    ----------
    config : dict
        The folder's ``config.json``.
    n_parameters : int or None
        Stored parameter count.
    repo_id : str or None
        Hub repo id: the card's title, the loading example and the model-index name.
    intended_use, training_data, objective, notes : str or None
        Free text (Markdown) of the corresponding sections.
    training : str or None
        The training run (steps, optimiser, final loss, configuration), in its own section.
    metrics : dict or None
        ``{dataset: {metric: value}}``, added to ``eval_results``.
    eval_results : list of huggingface_hub.EvalResult or None
        Evaluation results: the card's model-index and its evaluation table.
    license, base_model : str or None
        Hub metadata.
    datasets : iterable of str or None
        Hub dataset ids the model was trained on.
    source : str or None
        Where imported weights came from.
    tags : iterable of str
        Extra Hub tags.

    Returns
    -------
    huggingface_hub.ModelCard
    """
    from huggingface_hub import ModelCard, ModelCardData

    name, preprocessing, settings, usage = _describe(config)
    results = list(eval_results or []) + (eval_results_from_metrics(metrics) if metrics else [])
    data = ModelCardData(
        library_name="neurofm", license=license, pipeline_tag=PIPELINE_TAG,
        tags=list(dict.fromkeys(["neurofm", "eeg", "brain-signals", name, *tags])),
        datasets=list(datasets) if datasets else None, base_model=base_model,
        eval_results=results or None, model_name=(repo_id or name) if results else None)
    count = f" ({n_parameters:,} parameters)." if n_parameters else "."
    lines = [f"# {repo_id or name}", "", f"A neurofm `{name}` model{count}", ""]
    if source:
        lines += [f"Weights imported from `{source}`.", ""]
    lines += ["## Usage", "", "```python", "import neurofm", "",
              f"model = neurofm.from_pretrained({(repo_id or 'ORG/NAME')!r})"
              + ("" if repo_id else "  # the Hub repo, or this folder's path"),
              usage, "```", "",
              "## Intended use", "", intended_use or NOT_GIVEN, "",
              "## Training data", "", training_data or NOT_GIVEN, "",
              "## Objective", "", objective or NOT_GIVEN, ""]
    if training:
        lines += ["## Training", "", training, ""]
    lines += ["## Preprocessing the model expects", "",
              ("Prepare inputs the same way (also recorded in `config.json`; evaluation applies "
               "it by default):"), "", "| Setting | Value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(preprocessing.items())]
    lines += ["", "## Evaluation", "", *_evaluation_lines(results), "",
              "## Architecture", "", "```json", json.dumps(settings, indent=2, sort_keys=True),
              "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    lines += [f"Written by neurofm {config.get('neurofm_version', '')}".rstrip() + ".", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _folder_card(directory: Path, fields: dict):
    """:func:`model_card` of the folder ``directory`` (its config.json and weights' header)."""
    check_keys(fields, CARD_FIELDS, where="model card fields")
    weights = directory / WEIGHTS_NAME
    n_parameters = count_parameters(weights) if weights.is_file() else None
    return model_card(read_config(directory), n_parameters=n_parameters, **fields)


def write_model_card(directory, **fields) -> Path:
    """Write ``README.md`` into a model folder from its ``config.json`` and weights.

    Parameters
    ----------
    directory : str or Path
        A folder written by ``save_pretrained`` (or ``neurofm convert``).
    **fields
        The keyword arguments of :func:`model_card` (:data:`CARD_FIELDS`).

    Returns
    -------
    Path of the card.
    """
    directory = Path(directory)
    return write_text_atomically(directory / CARD_NAME, _folder_card(directory, fields).content)


def _sections(text: str) -> tuple[str, dict[str, str]]:
    """(the text before the first ``## `` heading, {heading: body}) of a card's Markdown."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    bodies = [_SIGNATURE.sub("", body).strip() for body in parts[2::2]]
    return parts[0], dict(zip((h.strip() for h in parts[1::2]), bodies, strict=True))


def _fields_of(card) -> dict:
    """The card fields a card written by :func:`model_card` (perhaps edited since) holds."""
    head, sections = _sections(card.text)
    fields = {field: sections[heading] for heading, field in SECTION_FIELDS.items()
              if sections.get(heading) not in (None, "", NOT_GIVEN)}
    data = card.data
    fields.update({k: v for k, v in (("license", data.license), ("datasets", data.datasets),
                                     ("base_model", data.base_model), ("tags", data.tags),
                                     ("eval_results", data.eval_results)) if v})
    if source := re.search(r"^Weights imported from `(.+)`\.$", head, flags=re.MULTILINE):
        fields["source"] = source.group(1)
    repo = re.search(r"neurofm\.from_pretrained\('([^']+)'\)", sections.get("Usage", ""))
    if repo and repo.group(1) != "ORG/NAME":
        fields["repo_id"] = repo.group(1)
    return fields


def is_neurofm_card(path) -> bool:
    """Whether the card at ``path`` says ``library_name: neurofm`` (written by neurofm)."""
    from huggingface_hub import ModelCard

    return ModelCard.load(path).data.library_name == "neurofm"


def update_model_card(directory, **fields) -> Path:
    """Rewrite a folder's neurofm card with ``fields`` over what it says; write one if missing.

    The card is rebuilt from ``config.json`` and the weights, with the texts, metadata and
    evaluation results of the existing card wherever ``fields`` give nothing new (new
    ``metrics`` / ``eval_results`` replace the old results). Sections the card does not build
    (added by hand) are kept at its end.

    Raises
    ------
    ValueError
        When the existing ``README.md`` was not written by neurofm (its metadata has no
        ``library_name: neurofm``): neurofm does not rewrite a card of another origin.
    """
    from huggingface_hub import ModelCard

    directory = Path(directory)
    path = directory / CARD_NAME
    if not path.is_file():
        return write_model_card(directory, **fields)
    old = ModelCard.load(path)
    if old.data.library_name != "neurofm":
        raise ValueError(f"{path} was not written by neurofm (no 'library_name: neurofm'); edit "
                         "it yourself, or remove it to have neurofm write the card.")
    kept = _fields_of(old)
    if "metrics" in fields or "eval_results" in fields:
        kept.pop("eval_results", None)
    content = _folder_card(directory, {**kept, **fields}).content
    _, sections = _sections(old.text)
    extra = [f"## {heading}\n\n{body}\n" for heading, body in sections.items()
             if heading not in (*SECTION_FIELDS, *GENERATED_SECTIONS)]
    return write_text_atomically(path, "\n".join([content, *extra]))
