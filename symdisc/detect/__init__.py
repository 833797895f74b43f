"""Known-symmetry detection by tracing: any nn.Module or zoo preset → verified Symmetry objects."""

from symdisc.detect.api import DetectedEntry, Detection, declared, detect, detect_known
from symdisc.detect.trace import Untraceable

__all__ = ["DetectedEntry", "Detection", "Untraceable", "declared", "detect", "detect_known"]
