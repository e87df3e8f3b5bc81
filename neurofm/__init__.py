"""neurofm: brain-signal foundation models for EEG, MEG and intracranial EEG.

The flow (see ``docs/design.md``)::

    recording -> neurofm.data -> neurofm.tokenizer -> neurofm.models -> neurofm.objectives
              -> neurofm.train -> neurofm.eval -> neurofm.hub

``neurofm.from_pretrained(id_or_dir)`` loads any model or tokenizer (a local folder, a Hub repo
id, ``cbramod:`` / ``labram:`` published weights, or a registered name for a new model).
"""

from neurofm._version import __version__

__all__ = ["__version__", "from_pretrained"]


def __getattr__(name):
    """Lazy ``neurofm.from_pretrained`` (:func:`neurofm.hub.from_pretrained`): keeps ``import
    neurofm`` cheap."""
    if name == "from_pretrained":
        from neurofm.hub import from_pretrained

        return from_pretrained
    raise AttributeError(f"module 'neurofm' has no attribute {name!r}")
