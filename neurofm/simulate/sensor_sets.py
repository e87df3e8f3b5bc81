"""Sensor sets for simulation: EEG montages, MEG helmets, sEEG shafts and ECoG grids.

A :class:`SensorSet` is an MNE ``Info`` (channel names, types and positions in MNE's head frame)
plus the spherical head it was placed on. All sets share one head geometry: the sphere that MNE
fits to the 10-20 montage's electrodes (:data:`HEAD_ORIGIN`, :data:`HEAD_RADIUS`), so the same
sources can be seen through EEG, MEG or intracranial contacts.

* EEG: any montage MNE ships (``colin27_1020`` / its old name ``standard_1020``, ``biosemi64``,
  ``GSN-HydroCel-129`` …). Legacy 10-20 aliases that sit on the same spot as their 10-05 name
  (T3 = T7, T4 = T8, T5 = P7, T6 = P8) and ear/mastoid references (A1, A2, M1, M2) are dropped.
* MEG: MNE's canonical ``neuromag`` (102 magnetometers + 204 planar gradiometers) or ``ctf275``
  (axial gradiometers, typed as magnetometers by MNE) with a device-to-head transform that puts
  the head centre where the nearest coil is farthest away, so every coil lies outside the scalp
  (at least 5 mm for the largest simulated head).
* sEEG: straight shafts entering from the lateral scalp, contacts 3.5 mm apart, named like real
  contacts (``LA1 … LA8`` for the left shaft ``LA``).
* ECoG: a rectangular grid with 10 mm pitch on the brain surface over one hemisphere (``G1 …``).

Intracranial contacts are typed EEG while the forward model is computed
(:func:`mne.make_forward_solution` refuses ``seeg``/``ecog`` channels; the sphere model handles
interior points) and retyped to ``seeg``/``ecog`` afterwards (:meth:`SensorSet.final_info`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mne
import numpy as np

from neurofm.sensors.montages import get_montage, montage_name

#: Modalities the simulator knows, and the sensor set each uses by default.
MODALITY_DEFAULTS = {
    "eeg": "colin27_1020",
    "meg": "neuromag",
    "seeg": "shafts8",
    "ecog": "grid8x8",
}
#: Aliases accepted for ``modality``.
MODALITY_ALIASES = {"ieeg": "seeg"}

#: Old 10-20 names that share a position with a 10-05 name, and reference electrodes.
_LEGACY_OR_REFERENCE = frozenset({"T3", "T4", "T5", "T6", "A1", "A2", "M1", "M2"})

#: Relative radii of the sphere model's shells (brain, CSF, skull, scalp), MNE's defaults.
RELATIVE_RADII = (0.90, 0.92, 0.97, 1.0)


@dataclass(frozen=True)
class SensorSet:
    """Sensors placed on the shared spherical head.

    Attributes
    ----------
    name : str
        Key of the set (``"colin27_1020"``, ``"neuromag"``, ``"shafts8"`` …); part of the forward
        cache key.
    modality : str
        ``"eeg"``, ``"meg"``, ``"seeg"`` or ``"ecog"``.
    info : mne.Info
        Channels as the forward model needs them (intracranial contacts typed ``eeg``).
    """

    name: str
    modality: str
    info: mne.Info

    @property
    def n_channels(self) -> int:
        return len(self.info["ch_names"])

    def positions(self) -> np.ndarray:
        """Sensor positions ``[C, 3]`` in metres, head frame (MEG: coil centres in head frame)."""
        info = self.info
        locs = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=float)
        if self.modality == "meg":
            trans = info["dev_head_t"]["trans"]
            locs = locs @ trans[:3, :3].T + trans[:3, 3]
        return locs

    def final_info(self, sfreq: float) -> mne.Info:
        """The ``Info`` written to files: intracranial contacts retyped, ``sfreq`` set."""
        info = self.info.copy()
        with info._unlock():
            info["sfreq"] = float(sfreq)
            info["lowpass"] = float(sfreq) / 2.0
        if self.modality in ("seeg", "ecog"):
            info.set_channel_types({name: self.modality for name in info["ch_names"]},
                                   on_unit_change="ignore", verbose="error")
        return info


def normalise_modality(modality: str) -> str:
    """Lower-case modality with aliases resolved; raises ``ValueError`` for unknown names."""
    key = str(modality).strip().lower()
    key = MODALITY_ALIASES.get(key, key)
    if key not in MODALITY_DEFAULTS:
        raise ValueError(f"Unknown modality {modality!r}; use one of "
                         f"{', '.join(MODALITY_DEFAULTS)} (or 'ieeg' for sEEG).")
    return key


def make_sensor_set(modality: str = "eeg", montage: str | None = None) -> SensorSet:
    """The sensor set for ``modality``, placed on the shared head.

    Parameters
    ----------
    modality : str
        ``"eeg"``, ``"meg"``, ``"seeg"`` (alias ``"ieeg"``) or ``"ecog"``.
    montage : str, optional
        EEG: an MNE montage name (current or pre-1.13 spelling). MEG: ``"neuromag"`` or
        ``"ctf275"``. sEEG: ``"shaftsN"`` (N shafts of 8 contacts). ECoG: ``"gridRxC"``.
        Default: :data:`MODALITY_DEFAULTS`.

    Returns
    -------
    SensorSet
    """
    modality = normalise_modality(modality)
    montage = montage or MODALITY_DEFAULTS[modality]
    return _cached_sensor_set(modality, str(montage))


@lru_cache(maxsize=32)
def _cached_sensor_set(modality: str, montage: str) -> SensorSet:
    if modality == "eeg":
        return _eeg_set(montage)
    if modality == "meg":
        return _meg_set(montage)
    if modality == "seeg":
        return _seeg_set(montage)
    return _ecog_set(montage)


def _eeg_set(montage: str) -> SensorSet:
    name = montage_name(montage)
    dig = get_montage(name)
    names = [n for n in dig.ch_names if n not in _LEGACY_OR_REFERENCE]
    info = mne.create_info(names, sfreq=250.0, ch_types="eeg")
    info.set_montage(dig, on_missing="ignore", verbose="error")
    return SensorSet(name=name, modality="eeg", info=info)


def _meg_set(system: str) -> SensorSet:
    key = system.strip().lower()
    if key not in ("neuromag", "ctf275"):
        raise ValueError(f"Unknown MEG system {system!r}; use 'neuromag' or 'ctf275'.")
    info = mne.channels.read_meg_canonical_info(key)
    locs = np.array([ch["loc"][:3] for ch in info["chs"]])
    # Place the head centre where it is farthest from the closest coil (a grid search in the
    # device frame), so that every coil lies outside the scalp.
    grid = np.stack(np.meshgrid(np.linspace(-0.02, 0.02, 9), np.linspace(-0.04, 0.04, 17),
                                np.linspace(-0.06, 0.06, 25), indexing="ij"), -1).reshape(-1, 3)
    clearance = np.array([np.linalg.norm(locs - c, axis=1).min() for c in grid])
    shift = np.asarray(HEAD_ORIGIN) - grid[np.argmax(clearance)]
    trans = np.eye(4)
    trans[:3, 3] = shift
    with info._unlock():
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", trans)
        info["sfreq"] = 250.0
        info["lowpass"] = 125.0
    return SensorSet(name=key, modality="meg", info=info)


def _seeg_set(spec: str) -> SensorSet:
    n_shafts = _parse_count(spec, "shafts", "sEEG")
    n_contacts, pitch = 8, 0.0035
    # Shaft entry points spread over both hemispheres, at three heights; each shaft points at
    # the head centre and its deepest contact stays 20 mm off the centre.
    letters = "ABCDEFGHJKMNPQRSTUVWXYZ"
    names, pos = [], []
    for k in range(n_shafts):
        side = "L" if k % 2 == 0 else "R"
        sign = -1.0 if side == "L" else 1.0
        azimuth = np.deg2rad(-60 + 120 * ((k // 2) / max(1, (n_shafts - 1) // 2)))
        elevation = np.deg2rad([-10.0, 15.0, 35.0][(k // 2) % 3])
        direction = np.array([sign * np.cos(elevation) * np.cos(azimuth),
                              np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
        deepest = 0.02 + 0.004 * (k % 3)
        shaft = f"{side}{letters[k // 2 % len(letters)]}"
        for j in range(n_contacts):
            names.append(f"{shaft}{j + 1}")
            pos.append(np.asarray(HEAD_ORIGIN) + direction * (deepest + j * pitch))
    return SensorSet(name=f"shafts{n_shafts}", modality="seeg", info=_info_at(names, pos))


def _ecog_set(spec: str) -> SensorSet:
    body = spec.strip().lower()
    if not body.startswith("grid") or "x" not in body:
        raise ValueError(f"Unknown ECoG grid {spec!r}; use 'gridRxC', e.g. 'grid8x8'.")
    try:
        rows, cols = (int(v) for v in body[4:].split("x"))
    except ValueError:
        raise ValueError(f"Unknown ECoG grid {spec!r}; use 'gridRxC', e.g. 'grid8x8'.") from None
    # Grid centred over the left sensorimotor cortex on the brain surface (just inside the
    # innermost shell), rows along the anterior-posterior axis, 10 mm pitch.
    radius = HEAD_RADIUS * RELATIVE_RADII[0] - 0.002
    centre_dir = np.array([-0.7, -0.05, 0.7])
    centre_dir /= np.linalg.norm(centre_dir)
    e_ap = np.array([0.0, 1.0, 0.0]) - centre_dir * centre_dir[1]
    e_ap /= np.linalg.norm(e_ap)
    e_other = np.cross(centre_dir, e_ap)
    names, pos = [], []
    for r in range(rows):
        for c in range(cols):
            offset = (r - (rows - 1) / 2) * 0.01 * e_ap + (c - (cols - 1) / 2) * 0.01 * e_other
            direction = centre_dir * radius + offset
            names.append(f"G{r * cols + c + 1}")
            pos.append(np.asarray(HEAD_ORIGIN) + direction / np.linalg.norm(direction) * radius)
    return SensorSet(name=f"grid{rows}x{cols}", modality="ecog", info=_info_at(names, pos))


def _parse_count(spec: str, prefix: str, what: str) -> int:
    body = spec.strip().lower()
    if body.startswith(prefix) and body[len(prefix):].isdigit() and int(body[len(prefix):]) > 0:
        return int(body[len(prefix):])
    raise ValueError(f"Unknown {what} layout {spec!r}; use '{prefix}N', e.g. '{prefix}8'.")


def _info_at(names, pos) -> mne.Info:
    info = mne.create_info(list(names), sfreq=250.0, ch_types="eeg")
    montage = mne.channels.make_dig_montage(dict(zip(names, np.asarray(pos))), coord_frame="head")
    info.set_montage(montage, verbose="error")
    return info


def _fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through ``points [n, 3]``: (centre [3], radius)."""
    a = np.c_[2 * points, np.ones(len(points))]
    b = (points ** 2).sum(1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    return centre, float(np.sqrt(sol[3] + centre @ centre))


def _head_geometry() -> tuple[tuple[float, float, float], float]:
    info = _eeg_set("colin27_1020").info
    locs = np.array([ch["loc"][:3] for ch in info["chs"]])
    centre, radius = _fit_sphere(locs)
    return tuple(float(v) for v in centre), float(radius)


#: Centre (metres, head frame) and scalp radius of the shared spherical head, fitted to the
#: 10-20 electrodes of MNE's ``colin27_1020`` montage.
HEAD_ORIGIN, HEAD_RADIUS = _head_geometry()
