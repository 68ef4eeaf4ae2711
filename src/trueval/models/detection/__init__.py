"""Object detection: torchvision detectors by name and the DetectorModule."""

from trueval.models.detection.architectures import ARCHITECTURES
from trueval.models.detection.factory import build_detection_module
from trueval.models.detection.module import DetectorModule
from trueval.models.detection.network import build_detector

__all__ = ["ARCHITECTURES", "DetectorModule", "build_detection_module", "build_detector"]
