"""Several processes, one loop (DistributedDataParallel) on the CPU: gloo, 2 processes, tiny MLPs.

Starting processes is the slow part, so one spawn of two workers runs every 2-process scenario and
saves what it saw; each test checks one scenario (its error, if it raised, is re-raised there).
"""
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
import traceback

import pytest
import torch
import torch.distributed as dist

from gan_tutorial import checkpoints, config, distributed, losses, models, train

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available")

WORLD, B, N, SEED = 2, 8, 64, 5          # 2 ranks x batch 8 = 16 per step; 64 items: 4 steps an epoch


def nets(seed=0, batchnorm=False):
    torch.manual_seed(seed)
    G = models.MLPGenerator(4, 2, hidden=(16, 16), activation="leaky_relu", batchnorm=batchnorm, out_activation=None)
    return G, models.MLPDiscriminator(2, hidden=(16, 16))


def points():
    return torch.randn(N, 2, generator=torch.Generator().manual_seed(1)) + 2


def settings(**kw):
    return {**dict(batch_size=B, num_steps=6, log_every=2, lr_G=1e-3, lr_D=1e-3, seed=SEED, progress=False,
                   device="cpu"), **kw}


def weights(trainer):
    return [p.detach().clone() for p in [*trainer.net_G.parameters(), *trainer.net_D.parameters()]]


def same_on_all_ranks(tensors) -> bool:
    flat = torch.cat([t.flatten() for t in tensors])
    return all(torch.equal(flat, other) for other in distributed.gather_objects(flat))


# --------------------------------------------------------------------------- the 2-process scenarios
def equivalence(out):
    tr = train.Trainer(*nets(), points(), **settings(ema_decay=0.9)).fit()
    return {"weights": weights(tr), "ema": [p.detach().clone() for p in tr.ema_G.module.parameters()],
            "history": tr.history, "ranks_agree": same_on_all_ranks(weights(tr)),
            "ema_agree": same_on_all_ranks(list(tr.ema_G.module.parameters()))}


def wgan_gp(out):
    tr = train.Trainer(*nets(), points(), **settings(loss="wasserstein-gp", k=2, num_steps=4, log_every=1)).fit()
    # the penalty's double backward through a DDP-wrapped critic gives the average of the ranks' own
    # gradients (each rank with different data), computed here on plain copies of the critic
    torch.manual_seed(0)
    plain = models.MLPDiscriminator(2, hidden=(16, 16))
    start = [p.detach().clone() for p in plain.parameters()]
    critic = train._ddp(plain, torch.device("cpu"))
    real, fake = torch.randn(B, 2) + distributed.rank(), torch.randn(B, 2)
    loss, _ = losses.get_loss("wasserstein-gp").discriminator(critic, real, fake,
                                                             generator=torch.Generator().manual_seed(3))
    loss.backward()
    mine = models.MLPDiscriminator(2, hidden=(16, 16))
    with torch.no_grad():
        for p, q in zip(mine.parameters(), start):
            p.copy_(q)
    own, _ = losses.get_loss("wasserstein-gp").discriminator(mine, real, fake,
                                                            generator=torch.Generator().manual_seed(3))
    own.backward()
    averaged = [distributed.mean(p.grad) for p in mine.parameters()]
    error = max((p.grad - a).abs().max().item() for p, a in zip(plain.parameters(), averaged))
    return {"history": tr.history, "grad_error": error, "ranks_agree": same_on_all_ranks(weights(tr))}


def resume(out):
    path = os.path.join(out, "run", "ckpt.pt")
    whole = train.Trainer(*nets(batchnorm=True), points(), **settings(ema_decay=0.9)).fit()
    first = train.Trainer(*nets(batchnorm=True), points(), **settings(ema_decay=0.9, checkpoint_path=path))
    first.fit(num_steps=3)     # crosses no epoch; the resumed part does (4 steps an epoch)
    ckpt = checkpoints.load(path)
    later = train.Trainer(*nets(seed=7, batchnorm=True), points(), **settings(ema_decay=0.9, checkpoint_path=path))
    later.load_checkpoint(path).fit()
    same = all(torch.equal(a, b) for a, b in zip(weights(whole) + list(whole.ema_G.module.parameters()),
                                                 weights(later) + list(later.ema_G.module.parameters())))
    return {"same": same, "steps": later.step,
            "last_record_same": whole.history["loss_D"][-1] == later.history["loss_D"][-1],
            "rng_ranks": len(ckpt.get("rng_ranks", [])), "files": sorted(os.listdir(os.path.dirname(path))),
            "snapshots": len(later.snapshots)}


def time_budget(out):
    tr = train.Trainer(*nets(), points(), **settings(num_steps=10**6, time_budget=0.5))
    if distributed.rank() == 1:         # this rank's clock runs 10x fast: left to itself it would stop far sooner
        tr._clock = lambda: 10 * time.perf_counter()
    tr.fit()

    class StopOnRank1(train.Callback):
        def on_log(self, trainer, record):
            trainer.should_stop = distributed.rank() == 1

    stopped = train.Trainer(*nets(), points(), **settings(num_steps=50), callbacks=[StopOnRank1()]).fit()
    return {"steps": distributed.gather_objects(tr.step), "stopped": distributed.gather_objects(stopped.step)}


def bad_input(out):
    errors = {}
    for name, kw in (("too_few", dict(batch_size=40)), ("sync_bn_cpu", dict(sync_bn=True))):
        try:
            train.Trainer(*nets(), points(), **{**settings(), **kw})
        except ValueError as e:
            errors[name] = str(e)
    return errors


SCENARIOS = [equivalence, wgan_gp, resume, time_budget, bad_input]


def worker(rank, port, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    writes = []
    save = checkpoints.atomic_save

    def logged_save(obj, path):
        writes.append(str(path))
        return save(obj, path)

    checkpoints.atomic_save = logged_save
    distributed.init("cpu", timeout_s=60)
    results = {"device": str(train.Trainer(*nets(), points(), **settings()).device)}
    for scenario in SCENARIOS:
        try:
            results[scenario.__name__] = scenario(out)
        except Exception:
            results[scenario.__name__] = {"error": traceback.format_exc()}
    results["writes"] = writes
    distributed.shutdown()
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.spawn(worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def result(ranks, name, rank=0):
    got = ranks[rank][name]
    if "error" in got:
        pytest.fail(f"the {name} scenario raised on rank {rank}:\n{got['error']}")
    return got


# --------------------------------------------------------------------------- tests
class ConcatNoise(train.Trainer):
    """One process drawing its noise as the 2 ranks do: ``B`` from ``seed``, then ``B`` from ``seed + 1``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.rank_rngs = [torch.Generator().manual_seed(self.cfg.seed + r) for r in range(WORLD)]

    def _noise(self, n):
        return torch.cat([torch.randn(n // WORLD, self.latent_dim, generator=g) for g in self.rank_rngs])


def test_two_processes_match_one_process_with_twice_the_batch(ranks):
    """2 ranks x batch B == 1 process x batch 2B, non-saturating loss, MLPs without batch norm.

    Why the two runs see the same numbers: every rank draws the same permutation (from ``seed``) and
    takes every 2nd item from its rank, so at each step the ranks' batches together are the one
    process's batch of 2B (in another order; the losses are means, so order does not matter). Each
    rank's noise comes from ``seed + rank``; the one-process run here draws its 2B noise vectors as
    the concatenation of those two streams (``ConcatNoise``), while its own generator (``seed``)
    draws only the permutations, as the ranks' shared data generator does. DDP averages the ranks'
    gradients of their batch means: the gradient of the mean over 2B. Only the order of float sums
    differs, hence the tolerance.
    """
    got = result(ranks, "equivalence")
    ref = ConcatNoise(*nets(), points(), **settings(ema_decay=0.9, batch_size=2 * B)).fit()
    assert got["ranks_agree"] and got["ema_agree"] and result(ranks, "equivalence", 1)["ranks_agree"]
    for a, b in zip(got["weights"] + got["ema"], weights(ref) + list(ref.ema_G.module.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert got["history"]["step"] == ref.history["step"] == [2, 4, 6]
    assert got["history"]["epoch"] == ref.history["epoch"] == [0, 0, 1]
    for key in ("loss_D", "loss_G", "d_real", "d_fake"):
        assert got["history"][key] == pytest.approx(ref.history[key], rel=1e-4, abs=1e-5)
    assert ranks[0]["device"] == "cpu"


def test_wgan_gp_trains_under_ddp(ranks):
    got = result(ranks, "wgan_gp")
    assert got["history"]["step"] == [1, 2, 3, 4] and got["ranks_agree"]
    assert all(math.isfinite(v) for key in ("loss_D", "loss_G", "gp", "wasserstein") for v in got["history"][key])
    assert got["grad_error"] < 1e-6      # the double backward through DDP: the average of the ranks' gradients


def test_checkpoint_from_rank_0_resumes_exactly(ranks):
    got = result(ranks, "resume")
    assert got["steps"] == 6 and got["rng_ranks"] == WORLD
    assert got["same"] and got["last_record_same"]     # weights, EMA and the record of steps 5-6
    assert result(ranks, "resume", 1)["same"]


def test_time_budget_and_stop_requests_end_every_rank_at_the_same_step(ranks):
    got = result(ranks, "time_budget")
    steps = got["steps"]
    assert steps[0] == steps[1] and 0 < steps[0] < 10**6
    assert got["stopped"] == [2, 2]       # rank 1 asked at the first record (step 2); rank 0 stopped with it


def test_only_rank_0_writes_and_keeps_snapshots(ranks):
    assert ranks[1]["writes"] == [] and ranks[0]["writes"]
    assert all(w.endswith("ckpt.pt") for w in ranks[0]["writes"])
    assert result(ranks, "resume")["files"] == ["ckpt.pt"]
    assert result(ranks, "resume")["snapshots"] == 1 and result(ranks, "resume", 1)["snapshots"] == 0


def test_bad_input_names_the_fix(ranks):
    got = result(ranks, "bad_input")
    assert "batch_size=40 per process x 2 processes needs at least 80 items" in got["too_few"]
    assert "lower the batch size or start fewer processes" in got["too_few"]
    assert "sync_bn=True needs CUDA" in got["sync_bn_cpu"]


def test_shards_make_the_epoch_of_one_process(tmp_path):
    """Tensors and streamed files: at each step the ranks' batches together are one process's batch of 2B."""
    from PIL import Image

    from gan_tutorial.data import TensorBatches
    from gan_tutorial.images import EpochSampler, ImageFiles, StreamBatches

    x = torch.arange(11)      # 11 items: the odd one out is left out of the shards
    one = TensorBatches(x, batch_size=4, generator=torch.Generator().manual_seed(0))
    shards = [TensorBatches(x, batch_size=2, generator=torch.Generator().manual_seed(0), rank=r, world_size=2)
              for r in range(2)]
    for step in range(5):     # 2 steps an epoch: crosses two epoch boundaries
        together = torch.cat([s.next()[0] for s in shards])
        assert sorted(together.tolist()) == sorted(one.next()[0].tolist()), step
    assert shards[0].epoch == shards[1].epoch == one.epoch == 2 and len(shards[0]) == len(one) == 2

    paths = []
    for i in range(10):       # image i is grey level 20 i
        paths.append(tmp_path / f"{i}.png")
        Image.new("L", (8, 8), 20 * i).save(paths[-1])
    files = ImageFiles(paths, image_size=8, channels=1, num_workers=0)
    shards = [distributed.shard_stream(StreamBatches(files, False, 2, "cpu", seed=3), r, 2) for r in range(2)]
    seen = [[round((float(image.mean()) + 1) * 127.5 / 20) for _ in range(2) for image in s.next()[0]]
            for s in shards]
    order = EpochSampler(10, 3).order(0)
    assert seen == [order[0:8:2].tolist(), order[1:8:2].tolist()]
    with pytest.raises(ValueError, match="per process x 2 processes needs at least 12 images"):
        distributed.shard_stream(StreamBatches(files, False, 6, "cpu", seed=3), 0, 2)


def test_more_processes_than_gpus_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"only 1 GPU\(s\).*--nproc_per_node 1"):
        distributed.device_for("cuda")
    assert distributed.device_for("cpu") == torch.device("cpu")
    assert distributed.backend_for("cuda:0") == "nccl" and distributed.backend_for("cpu") == "gloo"


def test_one_process_is_rank_0_of_1(monkeypatch):
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node N"):
        distributed.init("cpu")


def test_cli_train_under_torchrun(tmp_path):
    """``torchrun --nproc_per_node 2 -m gan_tutorial train``: one report, one checkpoint, one grid (rank 0's)."""
    if not (Path(config.data_root()) / "mnist").is_dir():
        pytest.skip("MNIST is not available (set GAN_TUTORIAL_DATA)")
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gan_tutorial",
           "train", "--model", "mlp", "--steps", "3", "--batch-size", "8", "--device", "cpu", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("Training mlp") == 1 and "batch 8 per process x 2 processes" in run.stdout
    assert run.stdout.count("Checkpoint:") == 1
    assert sorted(os.listdir(out)) == ["mlp.pt", "mlp_samples.png"]
    ckpt = checkpoints.load(out / "mlp.pt")
    assert ckpt["step"] == 3 and len(ckpt["rng_ranks"]) == 2


def test_cli_uneven_global_batch_under_torchrun_is_one_clear_error(tmp_path):
    """A --global-batch-size the processes cannot share: refused before any data is read, printed once."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gan_tutorial",
           "train", "--model", "mlp", "--steps", "3", "--global-batch-size", "15", "--device", "cpu",
           "--out", str(tmp_path / "runs")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode != 0
    assert run.stderr.count("--global-batch-size 15 does not split evenly over 2 processes") == 1, run.stderr[-3000:]
    assert "e.g. 14 or 16" in run.stderr and "MNIST" not in run.stdout
    assert not (tmp_path / "runs").exists()
