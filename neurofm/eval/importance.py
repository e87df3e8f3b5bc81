"""Channel importance of a frozen model + probe by channel occlusion.

For each channel ``c`` the test trials are embedded again without it and the probe's decision
function is compared with the full-montage one: importance ``[C]`` is the mean absolute change of
the decision scores. For models with sensor encoding the channel is *removed* (the montage shrinks
by one, which such models accept); for models that read channels by position in the input (the
CBraMod-compatible one) the channel's signal is zeroed instead.
"""

from __future__ import annotations

import numpy as np

from neurofm.eval.embeddings import extract_embeddings
from neurofm.eval.probe import ProbeFit
from neurofm.progress import progress_bar


def channel_occlusion_importance(model, x: np.ndarray, patch_valid: np.ndarray, sensors,
                                 probe: ProbeFit, *, remove: bool = True, pool: str = "mean",
                                 batch_size: int = 64, device="cpu") -> np.ndarray:
    """Mean absolute change of the probe's decision scores when each channel is occluded.

    Parameters
    ----------
    model : torch.nn.Module
        The frozen encoder the probe was fitted on (``embed`` API).
    x : ndarray of float32, shape [n, C, N, P]
        Test trials.
    patch_valid : ndarray of bool, shape [n, N]
    sensors : SensorLayout
        The ``C`` channels.
    probe : ProbeFit
        Probe fitted on embeddings of the training trials.
    remove : bool
        Remove the channel (sensor-encoding models) or zero its signal (needed with
        ``pool="channels"``, whose feature layout depends on the channel count).
    pool : {"mean", "channels"}
        The pooling the probe was fitted on.

    Returns
    -------
    ndarray of float, shape [C]
    """
    if len(sensors) < 2:
        raise ValueError("Channel importance needs at least two channels.")
    if remove and pool != "mean":
        raise ValueError("Channel removal changes the size of per-channel features; use "
                         "remove=False with pool='channels'.")
    full = probe.decision_function(extract_embeddings(model, x, sensors, patch_valid, pool=pool,
                                                      batch_size=batch_size, device=device))
    importance = np.zeros(len(sensors))
    for c in progress_bar(range(len(sensors)), desc="channel occlusion", leave=False):
        if remove:
            keep = np.arange(len(sensors)) != c
            xo, layout = x[:, keep], sensors.subset(keep)
        else:
            xo, layout = x.copy(), sensors
            xo[:, c] = 0.0
        z = extract_embeddings(model, np.ascontiguousarray(xo), layout, patch_valid, pool=pool,
                               batch_size=batch_size, device=device)
        importance[c] = float(np.mean(np.abs(probe.decision_function(z) - full)))
    return importance
