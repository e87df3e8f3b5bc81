"""neurofm: brain-signal foundation models for EEG, MEG and intracranial EEG.

The flow (see ``docs/design.md``)::

    recording -> neurofm.data -> neurofm.tokenizer -> neurofm.models -> neurofm.objectives
              -> neurofm.train -> neurofm.eval -> neurofm.hub

``neurofm.from_pretrained(id_or_dir)`` loads any model or tokenizer (a local folder, a Hub repo
id, ``cbramod:`` / ``labram:`` published weights, or a registered name for a new model);
``neurofm.embed(model, raw)`` turns an MNE recording into window embeddings
(:func:`neurofm.embedding.embed`). Both are imported on first use, so ``import neurofm`` stays
cheap.
"""

from neurofm._version import __version__

__all__ = ["__version__", "embed", "from_pretrained"]


def __getattr__(name):
    """Lazy ``neurofm.from_pretrained`` (:func:`neurofm.hub.from_pretrained`) and
    ``neurofm.embed`` (:func:`neurofm.embedding.embed`): keeps ``import neurofm`` cheap."""
    if name == "from_pretrained":
        from neurofm.hub import from_pretrained

        return from_pretrained
    if name == "embed":
        from neurofm.embedding import embed

        return embed
    raise AttributeError(f"module 'neurofm' has no attribute {name!r}")
