"""tools/analysis/pca_features.py shows a bar per image on request."""
import cv2
import numpy as np
import pytest

from dinov3_mm.utils.progress import PROGRESS_ENV

TINY = '{"embed_dims": 48, "num_layers": 1, "num_heads": 3}'


@pytest.mark.parametrize('forced', ['1', None])
def test_pca_tool_progress(run_python, repo_root, tmp_path, forced):
    rng = np.random.default_rng(0)
    (tmp_path / 'images').mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / 'images' / f'im{i}.png'),
                    rng.integers(0, 256, (32, 32, 3), np.uint8))
    proc = run_python(
        args=[repo_root / 'tools/analysis/pca_features.py',
              tmp_path / 'images', '--out', tmp_path / 'out', '--arch', TINY,
              '--img-size', '32', '--fp32'],
        env={PROGRESS_ENV: forced})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Wrote 3 PCA pictures' in proc.stdout
    if forced:
        assert 'PCA: patch features' in proc.stderr and '/3' in proc.stderr
    else:
        assert 'PCA: patch features' not in proc.stderr
