"""Errors of the deployment path: export failures and parity failures."""
from typing import Optional


class ExportError(RuntimeError):
    """The model cannot be exported (unsupported op, control flow, ...).

    Attributes:
        op (str, optional): The offending operator, when known.
        module (str, optional): Qualified name of the module calling it.
    """

    def __init__(self, message: str, op: Optional[str] = None,
                 module: Optional[str] = None):
        super().__init__(message)
        self.op = op
        self.module = module


class ParityError(AssertionError):
    """ONNX outputs differ from PyTorch beyond the tolerance.

    Attributes:
        report (dict): The :func:`check_parity` report.
    """

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report
