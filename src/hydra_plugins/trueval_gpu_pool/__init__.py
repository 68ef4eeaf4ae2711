"""Hydra launcher that runs sweep trials as separate processes, several per GPU.

``python train.py -m hydra/launcher=gpu_pool hydra.launcher.jobs_per_gpu=4 ...``
"""
