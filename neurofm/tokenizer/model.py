"""The neural tokenizer: encoder -> vector quantiser -> decoder, and its named configurations.

``x [B, C, N, P]`` + :class:`~neurofm.sensors.SensorBatch`:

1. tokens = ``PatchEmbedding(x) + SensorEncoding(sensors)`` ``[B, C, N, D]``;
   with ``n_latent > 0`` a :class:`ChannelUnification` maps them to ``[B, K, N, D]``;
2. a few :class:`TokenMixingBlock` layers (the encoder);
3. a linear map to ``code_dim`` and the :class:`VectorQuantizer` -> codes ``[B, C|K, N, L]``;
4. the decoder maps codes back to width ``D`` (adds the sensor encoding; with unification,
   decodes the latents to the C sensors with :class:`ChannelDecoder`), mixes tokens and predicts
   each patch's Fourier amplitude and phase (LaBraM's target; phase as cos/sin) and/or the raw
   patch.

A tokenizer saves and loads like a model (:class:`~neurofm.model_folder.ModelFolderMixin`):
``config.json`` (``model_type: "neurofm_tokenizer"`` and its :class:`TokenizerConfig` fields) +
``model.safetensors`` + ``README.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from neurofm._version import __version__
from neurofm.model_folder import (
    TOKENIZER_MODEL_TYPE,
    ModelFolderMixin,
    folder_kind,
    preprocessing_record,
)
from neurofm.model_folder.config import VERSION_KEYS
from neurofm.nn import rename_keys
from neurofm.sensors import SensorBatch
from neurofm.strict import field_names, from_dict, unknown_keys
from neurofm.tokenizer.blocks import TokenMixingBlock
from neurofm.tokenizer.patch_embed import PatchEmbedding
from neurofm.tokenizer.quantize import QuantizerOutput, VectorQuantizer
from neurofm.tokenizer.sensor_encoding import SensorEncoding
from neurofm.tokenizer.unify import ChannelDecoder, ChannelUnification

MODEL_TYPE = TOKENIZER_MODEL_TYPE
TARGETS = ("spectrum", "raw")
#: Format 1 (neurofm 0.1.0) -> 2: the feed-forward layers became :class:`neurofm.nn.FeedForward`.
FEED_FORWARD_RENAMES = ((r"\.ffn\.0\.", ".ffn.linear1."), (r"\.ffn\.3\.", ".ffn.linear2."))


@dataclass
class TokenizerConfig:
    """Architecture and training targets of a :class:`NeuralTokenizer`.

    ``n_latent = 0`` disables channel unification. ``targets`` holds ``"spectrum"`` (Fourier
    amplitude + phase) and/or ``"raw"`` (the patch samples). ``sfreq`` and ``preprocessing``
    record how the training data were prepared, so that users can prepare theirs the same way.
    """

    patch_size: int = 200
    dim: int = 64
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 1
    ffn_ratio: float = 2.0
    dropout: float = 0.0
    n_freqs: int = 8
    position_features: str = "sincos"
    head_radius: float = 0.095
    pos_jitter: float = 0.0
    n_latent: int = 0
    code_dim: int = 32
    codebook_size: int = 128
    n_levels: int = 1
    commitment_weight: float = 0.25
    ema_decay: float = 0.99
    kmeans_vectors: int = 2048
    dead_after: int = 10
    targets: tuple[str, ...] = ("spectrum",)
    phase_weight: float = 0.5
    sfreq: float = 200.0
    preprocessing: dict = field(default_factory=dict)

    def __post_init__(self):
        self.targets = tuple(self.targets)
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or not self.targets:
            raise ValueError(f"Tokenizer targets must be a non-empty subset of {TARGETS}; "
                             f"got {list(self.targets)}.")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["targets"] = list(self.targets)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> TokenizerConfig:
        """Build from a mapping, refusing unknown keys (the error names them)."""
        return from_dict(cls, values, where="tokenizer config")


#: Named configurations; ``tokenizer_config(name, **overrides)`` builds one.
TOKENIZER_CONFIGS: dict[str, dict] = {
    # Seconds per step on a laptop CPU; the configuration the tests train.
    "small": {"dim": 64, "n_heads": 4, "n_encoder_layers": 2, "n_decoder_layers": 1,
              "code_dim": 32, "codebook_size": 128},
    # LaBraM-like size for real corpora.
    "base": {"dim": 200, "n_heads": 8, "n_encoder_layers": 8, "n_decoder_layers": 3,
             "code_dim": 64, "codebook_size": 8192, "kmeans_vectors": 65536},
    # Channel unification to 16 latent channels: cost independent of the montage size (MEG).
    "small_unified": {"dim": 64, "n_heads": 4, "n_encoder_layers": 2, "n_decoder_layers": 1,
                      "code_dim": 32, "codebook_size": 128, "n_latent": 16},
}


def tokenizer_config(name: str = "small", **overrides) -> TokenizerConfig:
    """The named configuration ``name`` with ``overrides`` applied."""
    if name not in TOKENIZER_CONFIGS:
        raise ValueError(f"Unknown tokenizer config {name!r}; choose one of "
                         f"{sorted(TOKENIZER_CONFIGS)}.")
    return TokenizerConfig.from_dict({**TOKENIZER_CONFIGS[name], **overrides})


def fourier_targets(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Amplitude ``[..., F]`` and phase as cos/sin ``[..., 2F]`` of patches ``x [..., P]``.

    ``F = P // 2 + 1``. Amplitudes use ``norm="ortho"``, so unit-variance white noise has an
    expected squared amplitude of 1 per bin whatever ``P`` is.
    """
    spectrum = torch.fft.rfft(x.float(), norm="ortho")
    amplitude = spectrum.abs()
    phase = torch.angle(spectrum)
    return amplitude, torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


@dataclass
class TokenizerOutput:
    """Result of :meth:`NeuralTokenizer.forward`.

    Attributes
    ----------
    codes : LongTensor ``[B, C, N, L]`` (``[B, K, N, L]`` with unification); -1 on padding.
    loss : Tensor, scalar; reconstruction losses + commitment loss.
    losses : dict of float tensors, the separate terms (``amplitude``, ``phase``, ``raw``,
        ``commitment``).
    predictions : dict of Tensors ``[B, C, N, *]`` (``amplitude``, ``phase``, ``raw``).
    quantizer : QuantizerOutput
    """

    codes: torch.Tensor
    loss: torch.Tensor
    losses: dict
    predictions: dict
    quantizer: QuantizerOutput


def relative_error(pred: torch.Tensor, target: torch.Tensor, chan_mask: torch.Tensor
                   ) -> torch.Tensor:
    """Squared error over real channels divided by the target's energy there.

    Tensors are ``[B, C, N, F]``. 0 is perfect and 1 is what predicting zeros scores, whatever
    the signal's scale (EEG and MEG in model units differ by orders of magnitude).
    """
    w = chan_mask[:, :, None, None].to(pred.dtype)
    return ((pred - target) ** 2 * w).sum() / (target ** 2 * w).sum().clamp_min(1e-12)


def _weighted_mse(pred: torch.Tensor, target: torch.Tensor, chan_mask: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error over real channels; all tensors ``[B, C, N, F]``."""
    w = chan_mask[:, :, None, None].to(pred.dtype) * weight
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp_min(1e-12)


class NeuralTokenizer(nn.Module, ModelFolderMixin):
    """Sensor-aware VQ tokenizer for EEG, MEG and iEEG patches.

    Parameters
    ----------
    config : TokenizerConfig
    """

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = cfg = config
        self.patch_embed = PatchEmbedding(cfg.patch_size, cfg.dim, dropout=cfg.dropout)
        self.sensor_encoding = SensorEncoding(cfg.dim, cfg.n_freqs, cfg.head_radius,
                                              cfg.pos_jitter, features=cfg.position_features)
        self.unify = (ChannelUnification(cfg.dim, cfg.n_latent, cfg.n_heads,
                                         ffn_ratio=cfg.ffn_ratio, dropout=cfg.dropout)
                      if cfg.n_latent > 0 else None)
        self.encoder = nn.ModuleList(TokenMixingBlock(cfg.dim, cfg.n_heads, cfg.ffn_ratio,
                                                      cfg.dropout)
                                     for _ in range(cfg.n_encoder_layers))
        self.to_code = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.code_dim))
        self.quantizer = VectorQuantizer(cfg.code_dim, cfg.codebook_size, n_levels=cfg.n_levels,
                                         commitment_weight=cfg.commitment_weight,
                                         decay=cfg.ema_decay, kmeans_vectors=cfg.kmeans_vectors,
                                         dead_after=cfg.dead_after)
        self.from_code = nn.Linear(cfg.code_dim, cfg.dim)
        self.decoder = nn.ModuleList(TokenMixingBlock(cfg.dim, cfg.n_heads, cfg.ffn_ratio,
                                                      cfg.dropout)
                                     for _ in range(cfg.n_decoder_layers))
        self.channel_decoder = (ChannelDecoder(cfg.dim, cfg.n_heads, ffn_ratio=cfg.ffn_ratio,
                                               dropout=cfg.dropout)
                                if cfg.n_latent > 0 else None)
        n_bins = cfg.patch_size // 2 + 1
        self.heads = nn.ModuleDict()
        if "spectrum" in cfg.targets:
            self.heads["amplitude"] = nn.Linear(cfg.dim, n_bins)
            self.heads["phase"] = nn.Linear(cfg.dim, 2 * n_bins)
        if "raw" in cfg.targets:
            self.heads["raw"] = nn.Linear(cfg.dim, cfg.patch_size)

    # -- encoder ----------------------------------------------------------------------------
    def encode_features(self, x: torch.Tensor, sensors: SensorBatch
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Continuous encoder features.

        Returns
        -------
        features : Tensor ``[B, C, N, D]`` (``[B, K, N, D]`` with unification)
        token_mask : bool Tensor ``[B, C]`` (``[B, K]``, all True, with unification)
        sensor_embedding : Tensor ``[B, C, D]``
        """
        self._check_inputs(x, sensors)
        sensor_embedding = self.sensor_encoding(sensors)
        mask = sensors.chan_mask
        tokens = self.patch_embed(x) + sensor_embedding.unsqueeze(2)
        tokens = tokens * mask[:, :, None, None].to(tokens.dtype)
        if self.unify is not None:
            tokens = self.unify(tokens, mask)
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        for block in self.encoder:
            tokens = block(tokens, mask)
        return tokens, mask, sensor_embedding

    def quantize(self, x: torch.Tensor, sensors: SensorBatch
                 ) -> tuple[QuantizerOutput, torch.Tensor, torch.Tensor]:
        """Encode and quantise; returns the quantiser output, token mask and sensor encoding."""
        features, mask, sensor_embedding = self.encode_features(x, sensors)
        token_mask = mask.unsqueeze(-1).expand(features.shape[:3])
        return self.quantizer(self.to_code(features), token_mask), mask, sensor_embedding

    @torch.no_grad()
    def encode(self, x: torch.Tensor, sensors: SensorBatch) -> torch.Tensor:
        """Code indices ``[B, C, N, L]`` (``[B, K, N, L]`` with unification); -1 on padding."""
        return self.quantize(x, sensors)[0].codes

    def embed(self, x: torch.Tensor, sensors: SensorBatch) -> torch.Tensor:
        """Pooled representation ``[B, code_dim]``: mean quantised vector over real tokens."""
        out, mask, _ = self.quantize(x, sensors)
        weight = mask[:, :, None, None].to(out.quantized.dtype)
        n = weight.sum(dim=(1, 2, 3)) * out.quantized.shape[2]
        return (out.quantized * weight).sum(dim=(1, 2)) / n.unsqueeze(-1)

    def code_tokens(self, codes: torch.Tensor, sensors: SensorBatch) -> torch.Tensor:
        """Backbone input from codes (BrainOmni style): code vectors + sensor encoding.

        Parameters
        ----------
        codes : LongTensor ``[B, C, N, L]`` from :meth:`encode` (a tokenizer without unification)
        sensors : SensorBatch

        Returns
        -------
        Tensor ``[B, C, N, D]``, zeros on padding channels.
        """
        if self.unify is not None:
            raise ValueError("code_tokens needs per-sensor codes; this tokenizer unifies channels "
                             "into latents (n_latent > 0). Use one with n_latent=0.")
        tokens = self.from_code(self.quantizer.lookup(codes))
        tokens = tokens + self.sensor_encoding(sensors).unsqueeze(2)
        return tokens * sensors.chan_mask[:, :, None, None].to(tokens.dtype)

    # -- decoder ----------------------------------------------------------------------------
    def decode(self, quantized: torch.Tensor, token_mask: torch.Tensor,
               sensor_embedding: torch.Tensor, chan_mask: torch.Tensor) -> dict:
        """Predict the targets of every sensor patch from quantised vectors.

        Parameters
        ----------
        quantized : Tensor ``[B, C|K, N, code_dim]``
        token_mask : bool Tensor ``[B, C|K]``
        sensor_embedding : Tensor ``[B, C, D]``
        chan_mask : bool Tensor ``[B, C]``

        Returns
        -------
        dict of Tensors ``[B, C, N, *]``: ``amplitude`` ``[.., F]``, ``phase`` ``[.., 2F]``
        (cos, sin), ``raw`` ``[.., P]`` -- those in ``config.targets``.
        """
        h = self.from_code(quantized)
        if self.channel_decoder is None:
            h = h + sensor_embedding.unsqueeze(2)
        for block in self.decoder:
            h = block(h, token_mask)
        if self.channel_decoder is not None:
            h = self.channel_decoder(h, sensor_embedding, chan_mask)
        return {name: head(h) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor, sensors: SensorBatch) -> TokenizerOutput:
        """Tokenize and reconstruct ``x [B, C, N, P]``; the loss covers real channels only."""
        vq, token_mask, sensor_embedding = self.quantize(x, sensors)
        predictions = self.decode(vq.quantized, token_mask, sensor_embedding, sensors.chan_mask)
        losses = self.reconstruction_losses(predictions, x, sensors.chan_mask)
        losses["commitment"] = vq.loss
        cfg = self.config
        loss = (losses.get("amplitude", 0) + cfg.phase_weight * losses.get("phase", 0)
                + losses.get("raw", 0) + vq.loss)
        return TokenizerOutput(codes=vq.codes, loss=loss, losses=losses,
                               predictions=predictions, quantizer=vq)

    @staticmethod
    def reconstruction_losses(predictions: dict, x: torch.Tensor,
                              chan_mask: torch.Tensor) -> dict:
        """Losses of ``predictions`` against the targets from ``x``, over real channels.

        ``amplitude`` and ``raw``: :func:`relative_error`; ``phase``: mean squared error of
        cos/sin weighted by the bin's amplitude (the phase of a bin without power is noise).
        """
        losses = {}
        if "amplitude" in predictions:
            amplitude, phase = fourier_targets(x)
            losses["amplitude"] = relative_error(predictions["amplitude"], amplitude, chan_mask)
            # Phase matters where there is power: weigh each bin's cos/sin error by its amplitude.
            weight = amplitude.repeat(1, 1, 1, 2)
            losses["phase"] = _weighted_mse(predictions["phase"], phase, chan_mask, weight)
        if "raw" in predictions:
            losses["raw"] = relative_error(predictions["raw"], x, chan_mask)
        return losses

    def _check_inputs(self, x: torch.Tensor, sensors: SensorBatch) -> None:
        if x.dim() != 4:
            raise ValueError(f"Tokenizer input must be patched windows x [B, C, N, P]; got shape "
                             f"{tuple(x.shape)}.")
        if tuple(x.shape[:2]) != (sensors.batch_size, sensors.n_channels):
            raise ValueError(f"x has B, C = {tuple(x.shape[:2])} but sensors describe "
                             f"{(sensors.batch_size, sensors.n_channels)}; pass the SensorBatch "
                             "collated with these windows.")

    # -- model folder (save_pretrained / from_pretrained come from ModelFolderMixin) ---------
    def _folder_config(self, preprocessing=None) -> dict:
        """``config.json``: ``model_type`` and the :class:`TokenizerConfig` fields."""
        values = self.config.to_dict()
        if preprocessing is not None:
            values["preprocessing"] = preprocessing_record(values["preprocessing"], preprocessing)
        return {"model_type": MODEL_TYPE, **values}

    def upgrade_state_dict(self, state: dict, format_version: int) -> dict:
        """Rename the keys of weights written in ``format_version`` to this version's names.

        Format 1 (neurofm 0.1.0) -> 2: ``*.ffn.0.*`` / ``*.ffn.3.*`` -> ``*.ffn.linear1.*`` /
        ``*.ffn.linear2.*`` (one :class:`~neurofm.nn.FeedForward` for tokenizer and backbones).
        """
        if format_version >= 2:
            return state
        return rename_keys(state, FEED_FORWARD_RENAMES)

    @classmethod
    def _from_folder_config(cls, config: dict, where) -> NeuralTokenizer:
        """An untrained tokenizer of the configuration in ``config`` (a ``config.json`` dict)."""
        if "architecture" in config:
            raise ValueError(f"{where} describes a neurofm model ({config['architecture']!r}), not "
                             "a tokenizer; load it with neurofm.from_pretrained.")
        if "model_type" not in config:
            folder_kind(config, where)  # raises: the folder was not written by neurofm
        if config["model_type"] != MODEL_TYPE:
            raise ValueError(f"{where} describes model_type={config['model_type']!r}, not a "
                             f"{MODEL_TYPE!r}; load it with the matching class.")
        known = field_names(TokenizerConfig)
        values = {k: v for k, v in config.items() if k not in ("model_type", *VERSION_KEYS)}
        unknown = unknown_keys(values, known)
        if unknown:
            warnings.warn(f"{where} has tokenizer fields {unknown} unknown to neurofm "
                          f"{__version__} (written by a newer version?); ignoring them.",
                          UserWarning, stacklevel=4)
        return cls(TokenizerConfig.from_dict({k: v for k, v in values.items() if k in known}))
