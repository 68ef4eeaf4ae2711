"""YOLO-format detection data: yaml and label parsing, validation, transforms, the DataModule."""

from trueval.data.detection.datamodule import YoloDataModule
from trueval.data.detection.dataset import DetectionDataset, detection_collate
from trueval.data.detection.labels import ImageLabels, LabelProblem, read_label_file
from trueval.data.detection.yolo_yaml import YoloSpec, label_path_for, load_yolo_yaml, resolve_split

__all__ = [
    "DetectionDataset", "ImageLabels", "LabelProblem", "YoloDataModule", "YoloSpec", "detection_collate",
    "label_path_for", "load_yolo_yaml", "read_label_file", "resolve_split",
]
