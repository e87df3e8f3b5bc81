"""neurofm: brain-signal foundation models for EEG, MEG and intracranial EEG.

The flow (see ``docs/design.md``)::

    recording -> neurofm.data -> neurofm.tokenizer -> neurofm.models -> neurofm.objectives
              -> neurofm.train -> neurofm.eval -> neurofm.hub
"""

__version__ = "0.1.0"
