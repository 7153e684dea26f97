"""Deployable students: a run's student exported alone (image -> logits, dynamic batch axis) to ONNX or
``torch.export``'s ``.pt2``, with its preprocessing beside it, checked by the format's own runtime against
the checkpoint before anything is written (``ddkd-export``; docs/usage.md). The formats are listed in
``formats.FORMATS``."""

from .formats import FORMATS, ExportFormat, ExportUnavailableError
from .student import TOLERANCE, ExportMismatchError, ExportReport, StudentLogits, check_images, export_run

__all__ = ["FORMATS", "TOLERANCE", "ExportFormat", "ExportMismatchError", "ExportReport", "ExportUnavailableError",
           "StudentLogits", "check_images", "export_run"]
