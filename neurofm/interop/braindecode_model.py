"""``NeuroFM``: a neurofm model as a braindecode model (``EEGModuleMixin`` + ``nn.Module``).

::

    from braindecode import EEGClassifier
    from neurofm.interop import NeuroFM

    clf = EEGClassifier(NeuroFM, module__model="runs/cc_base/model", module__freeze=True,
                        module__chs_info=windows.datasets[0].raw.info["chs"],
                        module__sfreq=windows.datasets[0].raw.info["sfreq"],
                        train_split=None, max_epochs=10)
    clf.fit(windows, y=None)

Importing this module needs braindecode (the ``braindecode`` extra); without it the import
raises :class:`~neurofm.compat.MissingExtraError` with the pip command.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neurofm.compat import braindecode_models
from neurofm.data.spec import as_spec
from neurofm.embedding import POOLS, features, load_encoder, repeat_sensors
from neurofm.interop.signals import TrialPreprocessor, info_from_chs
from neurofm.sensors import SensorBatch

EEGModuleMixin = braindecode_models("neurofm.interop.NeuroFM").EEGModuleMixin


class NeuroFM(EEGModuleMixin, nn.Module):
    """A neurofm encoder with a linear head, as a braindecode model.

    Input ``[B, C, T]``: windows of the dataset's channels (``chs_info``) at its sampling rate
    (``sfreq``), in volts as MNE and braindecode keep them. The model's preprocessing (channel
    kinds, scale to model units, band-pass, notch, resampling to its rate) is applied inside by
    the code evaluation runs (:func:`neurofm.eval.inputs.prepare_trials`), on the input, which
    needs no gradient. Output ``[B, n_outputs]``: a linear layer (``final_layer``) on the
    pooled embedding.

    Parameters
    ----------
    n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        braindecode's signal parameters. ``chs_info`` (``info["chs"]``, or dicts with only
        ``ch_name`` for standard EEG names) and ``sfreq`` are required: the sensors and the
        resampling depend on them. braindecode fills them in from MNE Epochs; for a windows
        dataset pass ``module__chs_info`` and ``module__sfreq``.
    model : BrainEncoder, str or path
        A model, or anything :func:`neurofm.from_pretrained` accepts (a folder, a Hub id,
        ``"cbramod:SRC"`` / ``"labram:SRC"``, a registered name for a random initialisation).
    freeze : bool
        Train the head only; the encoder's weights stay as loaded (and in eval mode).
    pool : {"mean", None}
        The head reads the model's pooled embedding (``D``), or one vector per channel
        (``C * D``; ``K * D`` for models that merge channels into K latents).
    units : {"V", "uV"}
        Unit of the input's EEG values.
    random_state : int or None
        Seed of the encoder's weights when ``model`` is a registered name.
    """

    def __init__(self, n_outputs=None, n_chans=None, chs_info=None, n_times=None,
                 input_window_seconds=None, sfreq=None, model="criss_cross_small",
                 freeze: bool = False, pool: str | None = "mean", units: str = "V",
                 random_state: int | None = None):
        if chs_info is None or sfreq is None:
            raise ValueError("NeuroFM needs chs_info (the channels: raw.info['chs']) and sfreq "
                             "(the input's sampling rate). braindecode fills them in from MNE "
                             "Epochs; for a windows dataset pass module__chs_info= and "
                             "module__sfreq= (from windows.datasets[0].raw.info).")
        super().__init__(n_outputs=n_outputs, n_chans=n_chans, chs_info=chs_info,
                         n_times=n_times, input_window_seconds=input_window_seconds, sfreq=sfreq)
        del n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        if pool not in POOLS:
            raise ValueError(f"pool must be 'mean' or None (one vector per channel); got "
                             f"{pool!r}.")
        self.freeze, self.pool = bool(freeze), pool
        with torch.random.fork_rng(enabled=random_state is not None):
            if random_state is not None:
                torch.manual_seed(random_state)
            self.encoder = load_encoder(model)
        spec = as_spec(self.encoder.preprocessing, where="the model's preprocessing")
        self.preprocessor = TrialPreprocessor(info_from_chs(self.chs_info, self.sfreq), spec,
                                              units=units, source="NeuroFM input")
        if hasattr(self.encoder, "set_channel_names"):
            self.encoder.set_channel_names(self.preprocessor.layout.names)
        if self.freeze:
            self.encoder.requires_grad_(False)
        with torch.no_grad():
            was_training = self.encoder.training
            n_features = self._features(torch.zeros(1, self.n_chans, self.n_times)).shape[1]
            self.encoder.train(was_training)
        self.final_layer = nn.Linear(n_features, self.n_outputs)
        self.train(self.training)

    def train(self, mode: bool = True):
        """Training mode; a frozen encoder stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        inputs = self.preprocessor(x.detach().cpu().numpy().astype(np.float64))
        xp = torch.from_numpy(inputs.x).to(x.device)
        valid = torch.from_numpy(inputs.patch_valid).to(x.device)
        sensors = None
        if self.encoder.needs_sensors:
            sensors = repeat_sensors(SensorBatch.from_layout(inputs.sensors).to(x.device),
                                     xp.shape[0])
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            z = features(self.encoder, xp, sensors, valid, self.pool)
        return z.reshape(z.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (or regression outputs) ``[B, n_outputs]`` of windows ``[B, C, T]``."""
        return self.final_layer(self._features(x))
