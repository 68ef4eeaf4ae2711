"""Networks: each is built as ``net(in_shape=(C, H, W), num_classes=K, **cfg.model)``, maps float
N,C,H,W to logits N,K and has ``forward_features(x) -> N,D`` (the penultimate features).

- ``mlp.MLP``: linear layers, optional skip connections around pairs (model=mlp)
- ``cnn.CNN``: plain or residual conv stacks counted in layers, for the depth study (model=cnn)
- ``resnet.ResNet``: CIFAR- and ImageNet-style ResNets with GELU/depthwise/CBAM options (model=resnet)
- ``external.TorchvisionNet`` / ``external.TimmNet``: library models by name (model=torchvision|timm)
- ``speedrun.SpeedrunNet``: the airbench94-style net of the CIFAR-10 speed run (model=speedrun), whose
  max-pools are ``pooling``'s (Triton kernels on the GPU, ``triton_pool``)
- ``blocks``: the shared layers; ``complexity``: parameter count and multiply-adds
"""
