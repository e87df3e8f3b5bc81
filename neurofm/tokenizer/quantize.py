"""Vector quantiser: l2-normalised EMA codebooks with k-means start and dead-code restart.

Each token vector is l2-normalised and replaced by its nearest code by cosine similarity (LaBraM).
Codes are not trained by gradients but follow an exponential moving average (EMA) of the vectors
assigned to them; they start from k-means on the first training batches, and codes that stop
being used for ``dead_after`` batches are restarted on random vectors of the current batch. The encoder is pulled towards
its codes by a commitment loss and receives gradients through the straight-through estimator.

With ``n_levels > 1`` the quantiser is residual: level 1 quantises the normalised vector with
cosine codes; every further level quantises what remains with Euclidean codes; the token is the
sum of the levels' codes.

Under ``torch.distributed`` the per-batch code counts and sums are all-reduced before the EMA
update, and k-means starts and restarts are computed on rank 0 and broadcast, so every rank holds
the same codebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def codebook_stats(counts: torch.Tensor) -> tuple[float, float]:
    """Usage and perplexity of a codebook from assignment counts.

    Parameters
    ----------
    counts : Tensor ``[K]``
        How often each code was chosen.

    Returns
    -------
    usage : float
        Fraction of codes chosen at least once (0..1).
    perplexity : float
        ``exp(entropy)`` of the code distribution (1..K; K when all codes are equally used).
    """
    counts = counts.double()
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    p = counts / total
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return float((counts > 0).double().mean()), float(torch.exp(entropy))


class Codebook(nn.Module):
    """One level of codes ``embed [K, D]`` with EMA updates.

    Parameters
    ----------
    dim : int
        Code width ``D``.
    size : int
        Number of codes ``K``.
    cosine : bool
        l2-normalised codes and cosine assignment (else Euclidean).
    decay : float
        EMA decay of code counts and sums.
    kmeans_vectors : int
        Vectors collected from the first training batches before k-means starts the codebook;
        0 disables k-means (codes stay at their random start).
    kmeans_iters : int
        Lloyd iterations of the k-means start.
    dead_after : int
        A code chosen by no vector (on any rank) for this many consecutive training batches is
        restarted on a random vector of the current batch; 0 disables restarts.
    """

    def __init__(self, dim: int, size: int, *, cosine: bool = True, decay: float = 0.99,
                 kmeans_vectors: int = 2048, kmeans_iters: int = 10, dead_after: int = 10,
                 eps: float = 1e-5):
        super().__init__()
        self.size, self.cosine, self.decay, self.eps = size, cosine, decay, eps
        self.kmeans_vectors, self.kmeans_iters = kmeans_vectors, kmeans_iters
        self.dead_after = dead_after
        embed = torch.randn(size, dim)
        embed = F.normalize(embed, dim=-1) if cosine else embed * 0.1
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed_sum", embed.clone())
        self.register_buffer("unused_batches", torch.zeros(size, dtype=torch.long))
        self.register_buffer("initialised", torch.tensor(kmeans_vectors <= 0))
        self._pool: list[torch.Tensor] = []
        self.n_restarted = 0

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code index of each vector ``z [M, D] -> [M]``."""
        if self.cosine:
            return (z @ self.embed.t()).argmax(dim=-1)
        dist2 = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.embed.t()
                 + self.embed.pow(2).sum(-1))
        return dist2.argmin(dim=-1)

    @torch.no_grad()
    def observe(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        """Training step on valid vectors ``z [M, D]`` with their assignments ``idx [M]``.

        Collects vectors for the k-means start until it has run, then updates the EMA and
        restarts dead codes.
        """
        z = z.detach().float()
        if not bool(self.initialised):
            self._collect_and_maybe_start(z)
            return
        counts = torch.bincount(idx, minlength=self.size).float()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, z)
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        embed = self.embed_sum / smoothed.unsqueeze(-1)
        self.embed.copy_(F.normalize(embed, dim=-1) if self.cosine else embed)
        self.unused_batches.copy_(torch.where(counts > 0, 0, self.unused_batches + 1))
        if self.dead_after > 0:
            self._restart_dead_codes(z)

    def _collect_and_maybe_start(self, z: torch.Tensor) -> None:
        self._pool.append(z[: self.kmeans_vectors])
        n_pool = sum(len(p) for p in self._pool)
        ready = torch.tensor(float(n_pool >= self.kmeans_vectors), device=z.device)
        if _distributed():
            dist.all_reduce(ready, op=dist.ReduceOp.MAX)
        if not bool(ready):
            return
        pool = torch.cat(self._pool)
        n_batches = len(self._pool)
        self._pool = []
        if (not _distributed() or dist.get_rank() == 0) and len(pool):
            embed, counts = self._kmeans(pool)
            self.embed.copy_(embed)
            self.cluster_size.copy_(counts / n_batches)
            self.embed_sum.copy_(embed * self.cluster_size.unsqueeze(-1))
        self._broadcast()
        self.initialised.fill_(True)

    def _kmeans(self, pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lloyd's k-means (spherical when ``cosine``) on ``pool [M, D]``; returns codes, counts."""
        gen = torch.Generator(device="cpu").manual_seed(0)
        replace = len(pool) < self.size
        start = (torch.randint(len(pool), (self.size,), generator=gen) if replace
                 else torch.randperm(len(pool), generator=gen)[: self.size])
        embed = pool[start.to(pool.device)].clone()
        if replace:  # fewer vectors than codes: jitter duplicates apart
            embed += 1e-3 * torch.randn(embed.shape, generator=gen).to(embed)
        if self.cosine:
            embed = F.normalize(embed, dim=-1)
        for _ in range(self.kmeans_iters):
            self.embed.copy_(embed)
            idx = self.assign(pool)
            counts = torch.bincount(idx, minlength=self.size).float()
            sums = torch.zeros_like(embed).index_add_(0, idx, pool)
            used = counts > 0
            means = sums[used] / counts[used].unsqueeze(-1)
            embed[used] = F.normalize(means, dim=-1) if self.cosine else means
        self.embed.copy_(embed)
        counts = torch.bincount(self.assign(pool), minlength=self.size).float()
        return embed, counts

    def _restart_dead_codes(self, z: torch.Tensor) -> None:
        dead = self.unused_batches >= self.dead_after
        n_dead = int(dead.sum())  # the same on every rank: the counts were all-reduced
        if n_dead == 0:
            return
        if (not _distributed() or dist.get_rank() == 0) and len(z):
            pick = torch.randint(len(z), (n_dead,), device=z.device)
            fresh = z[pick]
            if self.cosine:
                fresh = F.normalize(fresh, dim=-1)
            self.embed[dead] = fresh
            self.cluster_size[dead] = 1.0
            self.embed_sum[dead] = fresh
            self.unused_batches[dead] = 0
        self._broadcast()
        self.n_restarted += n_dead

    def _broadcast(self) -> None:
        if _distributed():
            for buf in (self.embed, self.cluster_size, self.embed_sum, self.unused_batches):
                dist.broadcast(buf, src=0)


@dataclass
class QuantizerOutput:
    """What :class:`VectorQuantizer` returns for tokens ``z [..., D]``.

    Attributes
    ----------
    quantized : Tensor ``[..., D]``
        Sum of the chosen codes, with straight-through gradients to ``z``; zeros where masked.
    codes : LongTensor ``[..., L]``
        Code index per level; -1 where masked.
    loss : Tensor, scalar
        Commitment loss (weighted), over unmasked tokens.
    counts : Tensor ``[L, K]``
        Assignment counts of this batch per level (unmasked tokens; this process only).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    counts: torch.Tensor

    def stats(self, level: int = 0) -> tuple[float, float]:
        """``(usage, perplexity)`` of this batch at ``level`` (see :func:`codebook_stats`)."""
        return codebook_stats(self.counts[level])


class VectorQuantizer(nn.Module):
    """Quantise token vectors ``z [..., D]`` to codes.

    Parameters
    ----------
    dim : int
        Vector width ``D``.
    codebook_size : int
        Codes per level ``K``.
    n_levels : int
        Residual levels ``L`` (1 = plain VQ).
    commitment_weight : float
        Weight of ``||normalize(z) - sg(q)||^2``.
    decay, kmeans_vectors, kmeans_iters, dead_after
        See :class:`Codebook`.
    """

    def __init__(self, dim: int, codebook_size: int, *, n_levels: int = 1,
                 commitment_weight: float = 0.25, decay: float = 0.99,
                 kmeans_vectors: int = 2048, kmeans_iters: int = 10,
                 dead_after: int = 10):
        super().__init__()
        if n_levels < 1 or codebook_size < 2:
            raise ValueError(f"VectorQuantizer needs n_levels >= 1 and codebook_size >= 2; got "
                             f"{n_levels} and {codebook_size}.")
        self.dim, self.codebook_size, self.n_levels = dim, codebook_size, n_levels
        self.commitment_weight = commitment_weight
        self.levels = nn.ModuleList(
            Codebook(dim, codebook_size, cosine=(level == 0), decay=decay,
                     kmeans_vectors=kmeans_vectors, kmeans_iters=kmeans_iters,
                     dead_after=dead_after)
            for level in range(n_levels))

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        """Quantise (and, in training mode, update the codebooks).

        Parameters
        ----------
        z : Tensor ``[..., D]``
        mask : bool Tensor ``[...]`` or None
            True = real token. Masked tokens (padding channels) neither update the codebooks
            nor enter the loss.
        """
        shape = z.shape[:-1]
        flat = F.normalize(z.reshape(-1, self.dim), dim=-1)
        valid = (torch.ones(flat.shape[0], dtype=torch.bool, device=z.device) if mask is None
                 else mask.reshape(-1))
        residual = flat.detach()
        quantized = torch.zeros_like(flat)
        codes, counts = [], []
        for book in self.levels:
            idx = book.assign(residual)
            chosen = book.embed[idx]
            if self.training:
                book.observe(residual[valid], idx[valid])
            counts.append(torch.bincount(idx[valid], minlength=self.codebook_size))
            codes.append(idx)
            quantized = quantized + chosen
            residual = residual - chosen
        keep = valid.unsqueeze(-1).to(flat.dtype)
        if valid.any():
            loss = F.mse_loss(flat[valid], quantized[valid].detach()) * self.commitment_weight
        else:
            loss = flat.sum() * 0.0
        straight_through = (flat + (quantized - flat).detach()) * keep
        codes = torch.stack(codes, dim=-1).masked_fill(~valid.unsqueeze(-1), -1)
        return QuantizerOutput(quantized=straight_through.reshape(*shape, self.dim),
                               codes=codes.reshape(*shape, self.n_levels), loss=loss,
                               counts=torch.stack(counts))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors of indices ``codes [..., L] -> [..., D]`` (-1 gives zeros)."""
        out = torch.zeros(*codes.shape[:-1], self.dim, device=codes.device,
                          dtype=self.levels[0].embed.dtype)
        for level, book in enumerate(self.levels):
            idx = codes[..., level]
            out = out + book.embed[idx.clamp_min(0)] * (idx >= 0).unsqueeze(-1)
        return out
