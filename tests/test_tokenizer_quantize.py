"""Vector quantiser: assignment, EMA, k-means start, dead-code restart, residual levels, DDP."""

import os

import pytest
import torch
import torch.nn.functional as F

from neurofm.tokenizer import VectorQuantizer, codebook_stats


def _clustered(centres: torch.Tensor, n: int, spread: float = 0.05, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(centres), (n,), generator=gen)
    return centres[idx] + spread * torch.randn(n, centres.shape[1], generator=gen)


def _centres(n: int, dim: int = 8, seed: int = 0, hemisphere: float = 0.0):
    """Unit vectors; with ``hemisphere=+-1`` all have the sign of it on the first axis."""
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(n, dim, generator=gen)
    if hemisphere:
        c[:, 0] = hemisphere * (c[:, 0].abs() + 1.0)
    return F.normalize(c, dim=-1)


def test_codebook_stats_uniform_and_collapsed():
    assert codebook_stats(torch.full((16,), 5)) == pytest.approx((1.0, 16.0))
    one_hot = torch.zeros(16)
    one_hot[3] = 10
    assert codebook_stats(one_hot) == pytest.approx((1 / 16, 1.0))
    assert codebook_stats(torch.zeros(4)) == (0.0, 0.0)


def test_shapes_unit_codes_and_masked_tokens():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 32, kmeans_vectors=0).eval()
    z = torch.randn(2, 3, 4, 8)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False
    out = vq(z, mask)
    assert out.quantized.shape == z.shape and out.codes.shape == (2, 3, 4, 1)
    assert torch.all(out.codes[1, 2] == -1) and torch.all(out.quantized[1, 2] == 0)
    assert torch.all((out.codes[mask] >= 0) & (out.codes[mask] < 32))
    torch.testing.assert_close(out.quantized[mask].norm(dim=-1), torch.ones(int(mask.sum())))
    assert int(out.counts.sum()) == int(mask.sum())
    # cosine assignment: the chosen code has the highest cosine similarity
    sims = F.normalize(z[mask], dim=-1) @ vq.levels[0].embed.t()
    torch.testing.assert_close(sims.max(-1).values,
                               sims.gather(1, out.codes[mask][:, :1]).squeeze(1))


def test_straight_through_gradient_and_commitment():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 16, kmeans_vectors=0, commitment_weight=0.5).eval()
    z = torch.randn(10, 8, requires_grad=True)
    out = vq(z)
    grad_out = torch.randn(10, 8)
    (out.quantized * grad_out).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    (F.normalize(z2, dim=-1) * grad_out).sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)
    expected = 0.5 * F.mse_loss(F.normalize(z.detach(), dim=-1), out.quantized.detach())
    torch.testing.assert_close(out.loss, expected)


def test_kmeans_start_waits_for_enough_vectors_then_covers_clusters():
    centres = _centres(20)
    vq = VectorQuantizer(8, 32, kmeans_vectors=300).train()
    vq(_clustered(centres, 200, seed=1))
    assert not bool(vq.levels[0].initialised)
    vq(_clustered(centres, 200, seed=2))
    assert bool(vq.levels[0].initialised)
    vq.eval()
    held = _clustered(centres, 1000, seed=3)
    out = vq(held)
    error = (out.quantized - F.normalize(held, dim=-1)).pow(2).sum(-1).mean()
    assert error < 0.1  # a random codebook gives about 1
    usage, _ = out.stats()
    assert usage >= 20 / 32


def test_ema_moves_code_to_assigned_mean():
    vq = VectorQuantizer(4, 2, kmeans_vectors=0, dead_after=0, decay=0.5).train()
    book = vq.levels[0]
    book.embed.copy_(torch.eye(4)[:2])
    book.embed_sum.copy_(book.embed)
    target = F.normalize(torch.tensor([1.0, 0.0, 0.5, 0.0]), dim=0)
    for _ in range(30):
        vq(target.repeat(8, 1))
    torch.testing.assert_close(book.embed[0], target, atol=1e-4, rtol=0)
    torch.testing.assert_close(book.embed[1], torch.eye(4)[1], atol=1e-4, rtol=0)


def test_masked_tokens_do_not_update_codebook():
    torch.manual_seed(0)
    a = VectorQuantizer(8, 16, kmeans_vectors=64).train()
    b = VectorQuantizer(8, 16, kmeans_vectors=64).train()
    b.load_state_dict(a.state_dict())
    centres = _centres(10)
    for step in range(5):
        z = _clustered(centres, 80, seed=step)
        garbage = 100 * torch.randn(40, 8)
        torch.manual_seed(step)
        a(z)
        torch.manual_seed(step)
        b(torch.cat([z, garbage]), torch.cat([torch.ones(80), torch.zeros(40)]).bool())
    torch.testing.assert_close(a.levels[0].embed, b.levels[0].embed)


def _usage_after_distribution_shift(dead_after: int) -> float:
    """Codes start (k-means) on clusters in one hemisphere; the data then move to the other."""
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 32, kmeans_vectors=256, dead_after=dead_after).train()
    vq(_clustered(_centres(32, seed=1, hemisphere=-1.0), 256, seed=0))
    new_centres = _centres(32, seed=2, hemisphere=1.0)
    for step in range(60):
        vq(_clustered(new_centres, 256, seed=10 + step))
    vq.eval()
    return vq(_clustered(new_centres, 2000, seed=999)).stats()[0]


def test_dead_code_restart_raises_usage():
    without = _usage_after_distribution_shift(dead_after=0)
    with_restart = _usage_after_distribution_shift(dead_after=10)
    assert without < 0.35
    assert with_restart >= without + 0.4


def test_residual_levels_reduce_error_and_lookup_matches():
    centres = _centres(200, seed=4)
    errors = []
    for n_levels in (1, 3):
        torch.manual_seed(0)
        vq = VectorQuantizer(8, 16, n_levels=n_levels, kmeans_vectors=512).train()
        for step in range(30):
            vq(_clustered(centres, 512, seed=step))
        vq.eval()
        held = _clustered(centres, 2000, seed=100)
        out = vq(held)
        assert out.codes.shape == (2000, n_levels) and out.counts.shape == (n_levels, 16)
        torch.testing.assert_close(vq.lookup(out.codes), out.quantized, atol=1e-6, rtol=0)
        errors.append(float((out.quantized - F.normalize(held, dim=-1)).pow(2).sum(-1).mean()))
    assert errors[1] < 0.6 * errors[0]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="codebook_size >= 2"):
        VectorQuantizer(8, 1)


def _ddp_worker(rank: int, world: int, init_file: str, z: torch.Tensor, out_dir: str):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    half = len(z[0]) // world
    states = {}
    for name, dead_after in (("no_restart", 0), ("restart", 2)):
        torch.manual_seed(rank)  # different RNG per rank: only broadcasts keep them equal
        vq = VectorQuantizer(8, 16, kmeans_vectors=64, dead_after=dead_after, decay=0.8)
        for batch in z:
            vq.train()(batch[rank * half:(rank + 1) * half])
        states[name] = (vq.state_dict(), vq.levels[0].n_restarted)
    torch.save(states, os.path.join(out_dir, f"{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow  # two processes importing torch: ~15 s on a loaded 2-core machine
def test_ddp_ranks_share_one_codebook_equal_to_single_process(tmp_path):
    """Two gloo ranks, each with half of every batch, keep one identical codebook (restarts
    included); without restarts it equals the single-process codebook of the whole batches."""
    import torch.multiprocessing as mp

    centres = _centres(12, seed=5)
    z = torch.stack([_clustered(centres, 64, seed=s) for s in range(8)])
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), z, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    for name in ("no_restart", "restart"):
        for key, value in ranks[0][name][0].items():
            torch.testing.assert_close(value, ranks[1][name][0][key])
    assert ranks[0]["restart"][1] > 0  # the setup does restart codes
    torch.manual_seed(1)
    single = VectorQuantizer(8, 16, kmeans_vectors=64, dead_after=0, decay=0.8).train()
    single(z[0, :32])  # k-means runs on rank 0's pool: its halves of the first two batches
    single(z[1, :32])
    for batch in z[2:]:
        single(batch)
    torch.testing.assert_close(ranks[0]["no_restart"][0]["levels.0.embed"],
                               single.levels[0].embed, atol=1e-5, rtol=0)


def test_batch_without_real_tokens_changes_nothing_but_counts():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 16, kmeans_vectors=32).train()
    vq(_clustered(_centres(8), 64))
    embed = vq.levels[0].embed.clone()
    out = vq(torch.randn(5, 8), torch.zeros(5, dtype=torch.bool))
    assert torch.all(out.codes == -1) and float(out.loss) == 0.0
    torch.testing.assert_close(vq.levels[0].embed, embed)
