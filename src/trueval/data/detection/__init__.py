"""YOLO-format detection data: yaml and label parsing, validation, transforms, the DataModule.

``YoloDataModule`` (the `_target_` of configs/data/yolo.yaml) is ``YoloData`` with Lightning mixed
in, and ``DetectionDataset`` / ``detection_collate`` need torch: all three are made or imported on
first use, so that the audit, which builds ``YoloData``, imports neither.
"""

from trueval.data.base import lightning_classes
from trueval.data.detection.datamodule import YoloData
from trueval.data.detection.labels import ImageLabels, LabelProblem, read_label_file
from trueval.data.detection.yolo_yaml import YoloSpec, label_path_for, load_yolo_yaml, resolve_split

__all__ = [
    "DetectionDataset", "ImageLabels", "LabelProblem", "YoloData", "YoloDataModule", "YoloSpec", "detection_collate",
    "label_path_for", "load_yolo_yaml", "read_label_file", "resolve_split",
]

LIGHTNING_FREE = {"YoloDataModule": YoloData}
_TORCH = ("DetectionDataset", "detection_collate")  # names of trueval.data.detection.dataset


def __getattr__(name: str) -> object:
    if name in _TORCH:
        from trueval.data.detection import dataset

        return getattr(dataset, name)
    return lightning_classes(__name__, name, LIGHTNING_FREE)
