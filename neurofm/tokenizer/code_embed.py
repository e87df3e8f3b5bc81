"""Discrete patch input: a frozen tokenizer's quantised codes instead of continuous patches.

With ``patch_input="codes"`` a backbone (BrainOmni style) reads each patch through a trained
:class:`~neurofm.tokenizer.NeuralTokenizer`: the tokenizer assigns every sensor patch its codes,
their codebook vectors are looked up and a trainable linear map brings them to the backbone width.
The stem then adds its own sensor encoding as usual. The tokenizer stays frozen (eval mode, no
gradients, ``requires_grad=False``), so two inputs whose patches get the same codes give the
backbone exactly the same tokens.

The tokenizer is part of the backbone's state: its configuration is stored in the backbone's
``config["tokenizer"]`` (a plain dict) and its weights in the backbone's state dict, so a saved
backbone directory is self-contained.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from neurofm.sensors import SensorBatch
from neurofm.tokenizer.model import NeuralTokenizer, TokenizerConfig


def load_tokenizer(tokenizer):
    """A :class:`~neurofm.tokenizer.NeuralTokenizer` from any of the accepted descriptions.

    Parameters
    ----------
    tokenizer : NeuralTokenizer, str, os.PathLike, TokenizerConfig or dict
        A tokenizer (used as is), a tokenizer directory written by its ``save_pretrained`` or
        ``neurofm tokenizer train`` (loaded with its weights), or a configuration (a
        ``TokenizerConfig`` or its ``to_dict()`` form, as stored in a backbone's
        ``config.json``): this builds an *untrained* tokenizer whose weights are expected to come
        from the backbone's state dict (what ``from_pretrained`` does).

    Returns
    -------
    NeuralTokenizer
    """
    if isinstance(tokenizer, NeuralTokenizer):
        return tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        return NeuralTokenizer.from_pretrained(tokenizer)
    if isinstance(tokenizer, TokenizerConfig):
        return NeuralTokenizer(tokenizer)
    if isinstance(tokenizer, dict):
        values = {k: v for k, v in tokenizer.items() if k != "model_type"}
        return NeuralTokenizer(TokenizerConfig.from_dict(values))
    if tokenizer is None:
        raise ValueError(
            'patch_input="codes" needs a tokenizer: pass tokenizer=<NeuralTokenizer or the '
            "directory of a trained tokenizer> (model.overrides.tokenizer in a training config)."
        )
    raise TypeError(
        "tokenizer must be a NeuralTokenizer, a tokenizer directory, a TokenizerConfig or its "
        f"dict; got {type(tokenizer).__name__}."
    )


class CodeEmbedding(nn.Module):
    """Frozen tokenizer codes -> backbone tokens ``x [B, C, N, P] -> [B, C, N, D]``.

    Parameters
    ----------
    tokenizer : NeuralTokenizer, str, os.PathLike, TokenizerConfig or dict
        See :func:`load_tokenizer`. A tokenizer object passed in is frozen in place. It must
        keep one token row per sensor (``n_latent = 0``) and use the backbone's patch length.
    dim : int
        Backbone width ``D``.
    patch_size : int
        Backbone patch length ``P``; must equal the tokenizer's.
    """

    def __init__(self, tokenizer, dim: int, patch_size: int):
        super().__init__()
        tokenizer = load_tokenizer(tokenizer)
        cfg = tokenizer.config
        if cfg.n_latent > 0:
            raise ValueError(
                f"The tokenizer unifies channels into {cfg.n_latent} latents; a backbone's code "
                "input needs per-sensor codes. Use a tokenizer trained with n_latent=0."
            )
        if cfg.patch_size != patch_size:
            raise ValueError(
                f"The tokenizer reads {cfg.patch_size}-sample patches but the backbone has "
                f"patch_size={patch_size}; set the backbone's patch_size={cfg.patch_size}."
            )
        tokenizer.requires_grad_(False)
        self.tokenizer = tokenizer.eval()
        self.proj = nn.Linear(cfg.code_dim, dim)

    def train(self, mode: bool = True) -> CodeEmbedding:
        """Set the projection's mode; the tokenizer always stays in eval mode."""
        super().train(mode)
        self.tokenizer.eval()
        return self

    def codes(self, x: torch.Tensor, sensors: SensorBatch) -> torch.Tensor:
        """Code indices ``[B, C, N, L]`` of the patches ``x [B, C, N, P]`` (-1 on padding)."""
        return self.tokenizer.encode(x, sensors)

    def forward(
        self, x: torch.Tensor, sensors: SensorBatch, patch_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Projected code vectors ``[B, C, N, D]`` of the patches ``x [B, C, N, P]``.

        Patches hidden by ``patch_mask [B, C, N]`` (True = hidden) are zeroed before the
        tokenizer sees them: its encoder mixes patches, so the codes of visible patches would
        otherwise carry information about the hidden ones. (The backbone replaces the hidden
        tokens themselves with its mask token.)
        """
        if patch_mask is not None:
            x = x.masked_fill(patch_mask[..., None], 0.0)
        with torch.no_grad():
            vectors = self.tokenizer.quantizer.lookup(self.codes(x, sensors))
        return self.proj(vectors.to(self.proj.weight.dtype))
