"""Put ``tools/analysis`` on ``sys.path``, as running its scripts does.

The benchmark scripts import their code as the ``benchmarks`` package from
their own folder; the tests import it the same way.
"""
import sys
from pathlib import Path

ANALYSIS_DIR = Path(__file__).resolve().parents[2] / 'tools' / 'analysis'

if str(ANALYSIS_DIR) not in sys.path:
    sys.path.insert(0, str(ANALYSIS_DIR))
