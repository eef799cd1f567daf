"""The export wrapper's tasks (dinov3_mm.deploy.export_wrapper)."""
import onnx
import pytest
import torch

from dinov3_mm.deploy import check_parity, export_onnx

pytestmark = pytest.mark.filterwarnings('ignore')


def test_features_of_frozen_backbone(tmp_path, tiny_classifier):
    # frozen weights + no_grad is exactly when the oneDNN linear kicks in
    model = tiny_classifier(vit=dict(frozen_stages=2))
    path = export_onnx(model, 'features', str(tmp_path / 'feat.onnx'),
                       input_size=(32, 32))['path']
    graph = onnx.load(path).graph
    assert [o.name for o in graph.output] == ['embeddings']
    x = torch.randn(3, 3, 32, 32)
    report = check_parity(model, path, x, task='features')
    assert report['outputs']['embeddings']['shape'] == [3, 48]
