"""Spherical head, volume source grid and forward model, cached per (sensor set, head size).

The recipe uses only what the mne wheel ships (nothing is downloaded):

1. :func:`mne.make_sphere_model` — four shells (brain, CSF, skull, scalp) centred on
   :data:`~neurofm.simulate.sensor_sets.HEAD_ORIGIN`, scalp radius ``HEAD_RADIUS * head_scale``
   (for intracranial contacts a homogeneous sphere the size of the brain shell, since MNE's shell
   approximation holds on the scalp only);
2. :func:`mne.setup_volume_source_space` — a regular grid inside the brain shell, without the
   points within ``exclude`` millimetres of the centre (a dipole at the centre gives NaN);
3. :func:`mne.make_forward_solution` — free-orientation gain ``[C, 3 * S]``;
4. each subject draws one fixed random orientation per dipole, giving a fixed-orientation forward
   ``[C, S]`` that :func:`mne.apply_forward_raw` applies to the source time courses.

EEG electrodes and intracranial contacts move with the head (positions scaled about the centre by
``head_scale``); the MEG helmet stays where it is, so a smaller head sits further from it.
Intracranial contacts are computed as EEG electrodes; grid points closer than
:data:`MIN_CONTACT_DISTANCE` to a contact are silenced in the gain, since a point dipole next to a
contact gives an unphysically large potential.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np

from neurofm.simulate.sensor_sets import HEAD_ORIGIN, HEAD_RADIUS, RELATIVE_RADII, SensorSet

#: Distance (metres) within which a source grid point is silenced for intracranial contacts.
MIN_CONTACT_DISTANCE = 0.006
#: Conductivity (S/m) of the homogeneous brain sphere used for intracranial contacts.
BRAIN_CONDUCTIVITY = 0.33
#: Head sizes a subject can have (scale of the scalp radius); a small set keeps the cache useful.
HEAD_SCALES = (0.94, 0.97, 1.0, 1.03, 1.06)

_FORWARD_CACHE: dict[tuple, HeadModel] = {}


@dataclass
class HeadModel:
    """Forward model of one sensor set on one head size.

    Attributes
    ----------
    sensor_set : SensorSet
        Sensors as placed on this head (EEG/iEEG positions scaled by ``head_scale``).
    head_scale : float
        Scalp radius relative to :data:`HEAD_RADIUS`.
    forward : mne.Forward
        Free-orientation forward solution (``forward["sol"]["data"]`` is ``[C, 3 * S]``).
    source_pos : ndarray, shape [S, 3]
        Source grid positions in metres, head frame.
    """

    sensor_set: SensorSet
    head_scale: float
    forward: mne.Forward
    source_pos: np.ndarray

    @property
    def n_sources(self) -> int:
        return len(self.source_pos)

    def fixed_forward(self, orientations: np.ndarray) -> mne.Forward:
        """Fixed-orientation forward for unit ``orientations [S, 3]`` (one per grid point).

        Returns
        -------
        mne.Forward
            A copy whose gain is ``[C, S]``: column ``s`` is the free gain of point ``s``
            projected on ``orientations[s]``.
        """
        ori = np.asarray(orientations, dtype=float)
        if ori.shape != (self.n_sources, 3):
            raise ValueError(f"orientations must have shape ({self.n_sources}, 3), got {ori.shape}.")
        ori = ori / np.linalg.norm(ori, axis=1, keepdims=True)
        free = self.forward["sol"]["data"].reshape(len(self.forward["info"]["ch_names"]),
                                                  self.n_sources, 3)
        gain = np.einsum("csk,sk->cs", free, ori)
        fwd = self.forward.copy()
        fwd["sol"]["data"] = gain
        fwd["sol"]["ncol"] = self.n_sources
        fwd["source_ori"] = fwd["_orig_source_ori"] = mne.io.constants.FIFF.FIFFV_MNE_FIXED_ORI
        fwd["source_nn"] = ori
        fwd["_orig_sol"] = gain
        return fwd


def head_model(sensor_set: SensorSet, head_scale: float = 1.0, grid_mm: float = 12.0,
               exclude_mm: float = 20.0) -> HeadModel:
    """The forward model for ``sensor_set`` on a head of size ``head_scale`` (cached).

    Parameters
    ----------
    sensor_set : SensorSet
        From :func:`~neurofm.simulate.sensor_sets.make_sensor_set`.
    head_scale : float
        Scalp radius relative to the 10-20 montage's fitted sphere.
    grid_mm : float
        Source grid spacing in millimetres (12 mm gives about 1500 points; 25 mm about 150).
    exclude_mm : float
        Radius around the centre kept free of sources (must be > 0).

    Returns
    -------
    HeadModel
        Cached within the process per ``(sensor set, head_scale, grid_mm, exclude_mm)``, so many
        subjects share a handful of forward computations.
    """
    if exclude_mm <= 0:
        raise ValueError("exclude_mm must be > 0: a dipole at the sphere's centre gives NaN.")
    key = (sensor_set.name, sensor_set.modality, round(float(head_scale), 4), float(grid_mm),
           float(exclude_mm))
    if key not in _FORWARD_CACHE:
        _FORWARD_CACHE[key] = _compute_head_model(sensor_set, float(head_scale), float(grid_mm),
                                                  float(exclude_mm))
    return _FORWARD_CACHE[key]


def clear_cache() -> None:
    """Forget every cached forward model."""
    _FORWARD_CACHE.clear()


def _compute_head_model(sensor_set: SensorSet, scale: float, grid_mm: float,
                        exclude_mm: float) -> HeadModel:
    origin = np.asarray(HEAD_ORIGIN)
    radius = HEAD_RADIUS * scale
    placed = _scaled_sensor_set(sensor_set, scale)
    if sensor_set.modality in ("seeg", "ecog"):
        # Inside the skull the nearly insulating bone bounds a homogeneous brain sphere; the
        # shell approximation MNE uses for EEG is only valid for electrodes on the scalp.
        sphere = mne.make_sphere_model(r0=origin, head_radius=radius * RELATIVE_RADII[0],
                                       relative_radii=(0.99, 1.0),
                                       sigmas=(BRAIN_CONDUCTIVITY, BRAIN_CONDUCTIVITY),
                                       verbose="error")
    else:
        sphere = mne.make_sphere_model(r0=origin, head_radius=radius,
                                       relative_radii=RELATIVE_RADII, verbose="error")
    # Keep the grid 5 mm inside the brain shell.
    inner = np.r_[origin, radius * RELATIVE_RADII[0] - 0.005]
    src = mne.setup_volume_source_space(sphere=inner, pos=grid_mm, exclude=exclude_mm,
                                        verbose="error")
    is_meg = sensor_set.modality == "meg"
    fwd = mne.make_forward_solution(placed.info, trans=None, src=src, bem=sphere, meg=is_meg,
                                    eeg=not is_meg, verbose="error")
    source_pos = fwd["source_rr"].copy()
    if sensor_set.modality in ("seeg", "ecog"):
        contacts = placed.positions()
        dist = np.linalg.norm(source_pos[:, None, :] - contacts[None, :, :], axis=2)
        near = (dist < MIN_CONTACT_DISTANCE).any(axis=1)
        gain = fwd["sol"]["data"].reshape(len(contacts), len(source_pos), 3)
        gain[:, near, :] = 0.0
        fwd["sol"]["data"] = gain.reshape(len(contacts), -1)
    if not np.all(np.isfinite(fwd["sol"]["data"])):
        raise ValueError(f"Forward model for {sensor_set.name} has non-finite gains; increase "
                         f"exclude_mm (now {exclude_mm}).")
    return HeadModel(sensor_set=placed, head_scale=scale, forward=fwd, source_pos=source_pos)


def _scaled_sensor_set(sensor_set: SensorSet, scale: float) -> SensorSet:
    """EEG/iEEG sensors moved radially with the head; MEG unchanged."""
    if sensor_set.modality == "meg" or scale == 1.0:
        return sensor_set
    info = sensor_set.info.copy()
    origin = np.asarray(HEAD_ORIGIN)
    scaled = {ch["ch_name"]: origin + (ch["loc"][:3] - origin) * scale for ch in info["chs"]}
    info.set_montage(mne.channels.make_dig_montage(scaled, coord_frame="head"), verbose="error")
    return SensorSet(name=sensor_set.name, modality=sensor_set.modality, info=info)
