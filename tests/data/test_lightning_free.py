"""Each dataset is a Lightning-free class; the `<Name>DataModule` a config names is the same class with
Lightning mixed in, made on first use: a Lightning DataModule to the Trainer, found again by pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytorch_lightning as pl
from torchvision.datasets.folder import IMG_EXTENSIONS

from trueval.data import base, detection, digits, imagefolder, torchvision_sets


def test_datamodules_are_lightning_versions_of_the_plain_classes(tmp_path: Path) -> None:
    for module, plain, lightning in ((digits, "DigitsData", "DigitsDataModule"),
                                     (imagefolder, "ImageFolderData", "ImageFolderDataModule"),
                                     (torchvision_sets, "TorchvisionData", "TorchvisionDataModule")):
        cls = getattr(module, lightning)
        assert cls is getattr(module, lightning)  # made once
        assert issubclass(cls, (pl.LightningDataModule)) and issubclass(cls, getattr(module, plain))
        assert issubclass(cls, base.ClassificationDataModule)
        assert not issubclass(getattr(module, plain), pl.LightningDataModule)
        assert base.plain_class(f"{module.__name__}.{lightning}") == f"{module.__name__}.{plain}"
    dm = digits.DigitsDataModule(cache_dir=str(tmp_path))
    again = pickle.loads(pickle.dumps(dm))
    assert type(again) is digits.DigitsDataModule and again.trainer is None
    assert base.plain_class("os.system") == "os.system"  # nothing outside trueval.data is imported


def test_yolo_datamodule_is_the_lightning_version_of_yolo_data() -> None:
    cls = detection.YoloDataModule
    assert cls is detection.YoloDataModule and cls.__module__ == "trueval.data.detection"
    assert issubclass(cls, pl.LightningDataModule) and issubclass(cls, detection.YoloData)
    assert not issubclass(cls, base.ClassificationData)
    assert not issubclass(detection.YoloData, pl.LightningDataModule)
    assert base.plain_class("trueval.data.detection.YoloDataModule") == "trueval.data.detection.YoloData"
    dm = cls("data.yaml", image_size=64)
    again = pickle.loads(pickle.dumps(dm))
    assert type(again) is cls and again.trainer is None and again.yaml_path == "data.yaml"


def test_image_extensions_are_torchvisions() -> None:
    assert imagefolder.IMG_EXTENSIONS == IMG_EXTENSIONS
