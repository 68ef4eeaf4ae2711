"""The launcher's config node, ``hydra/launcher=trueval_gpu_pool`` (``configs/hydra/launcher/gpu_pool.yaml``)."""


from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class GpuPoolLauncherConf:
    _target_: str = "hydra_plugins.trueval_gpu_pool.gpu_pool_launcher.GpuPoolLauncher"
    # trials sharing one GPU at the same time (on a host without GPUs: trials at once on the CPU)
    jobs_per_gpu: int = 1
    # null: every visible GPU; N: GPUs 0..N-1; [0, 2]: those ids
    gpus: Any = None
    # cap on the number of trials at once (default: number of GPUs x jobs_per_gpu)
    max_concurrent: Optional[int] = None
    # CPU threads per trial (OMP/MKL_NUM_THREADS) when not set in the environment; null: cores / trials at once
    threads_per_job: Optional[int] = None
    # true: trials print to this terminal; false: to <job_dir>/trial.out
    stream_output: bool = False
    # true: one long-lived worker process per slot runs its trials one after the other (imports and
    # CUDA init paid once per slot); false: a fresh process per trial (for trials that leak state)
    reuse_workers: bool = True


ConfigStore.instance().store(group="hydra/launcher", name="trueval_gpu_pool", node=GpuPoolLauncherConf, provider="trueval")
