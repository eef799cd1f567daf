"""LoRA through peft on our Linear layers: freezing, init, merging, loading."""
import pytest
import torch

from dinov3_mm.models.lora import apply_lora, has_lora, merge_lora
from dinov3_mm.registry import MODELS
from dinov3_mm.structures import DataSample

VIT = dict(
    type='DINOv3ViT',
    arch=dict(embed_dims=64, num_layers=2, num_heads=2),
    out_type='cls_patch_avg')
SWIGLU_VIT = dict(VIT, arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                 ffn_type='swiglu'))
CONVNEXT = dict(type='DINOv3ConvNeXt',
                arch=dict(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32]),
                out_type='cls_token')
WIDTH = {'vit': 128, 'swiglu': 128, 'convnext': 32}
BACKBONES = {'vit': VIT, 'swiglu': SWIGLU_VIT, 'convnext': CONVNEXT}


def classifier(kind='vit', lora=dict(r=4, alpha=8)):
    return MODELS.build(dict(
        type='DINOv3Classifier', backbone=BACKBONES[kind],
        head=dict(type='LinearClsHead', num_classes=3, in_channels=WIDTH[kind]),
        lora=lora))


def train_step(model, steps=1):
    optim = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.5)
    data = dict(inputs=[torch.randint(0, 256, (3, 32, 32),
                                      dtype=torch.uint8) for _ in range(4)],
                data_samples=[DataSample().set_gt_label(i % 3)
                              for i in range(4)])
    for _ in range(steps):
        processed = model.data_preprocessor(data, training=True)
        loss = model(**processed, mode='loss')['loss']
        optim.zero_grad()
        loss.backward()
        optim.step()


def test_only_adapters_and_head_train():
    model = classifier()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all('lora_' in n or n.startswith('head.')
                             for n in trainable)
    assert {'head.fc.weight', 'head.fc.bias'} <= trainable
    wrapped = {n.rsplit('.lora_', 1)[0] for n in trainable if 'lora_' in n}
    assert wrapped == {f'backbone.blocks.{i}.{m}' for i in range(2)
                       for m in ('attn.qkv', 'attn.proj', 'mlp.fc1',
                                 'mlp.fc2')}
    assert not has_lora(model.backbone.patch_embed)


@pytest.mark.parametrize('kind', ['vit', 'swiglu', 'convnext'])
def test_output_unchanged_at_init_and_merge_matches(kind):
    torch.manual_seed(0)
    plain = classifier(kind, lora=None).eval()
    model = classifier(kind).eval()
    model.load_state_dict(plain.state_dict())  # plain keys load via the hook
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = plain(x)
        torch.testing.assert_close(model(x), reference)
    model.train()
    train_step(model, steps=2)
    model.eval()
    with torch.no_grad():
        unmerged = model(x)
    assert not torch.allclose(unmerged, reference, atol=1e-4)
    merge_lora(model)
    assert not has_lora(model) and model.lora_cfg is None
    with torch.no_grad():
        torch.testing.assert_close(model(x), unmerged, atol=1e-5, rtol=1e-5)
    plain.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), unmerged, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('kind,layer', [('vit', 'blocks.0.mlp.fc1'),
                                        ('convnext', 'stages.1.0.pwconv1')])
def test_adapter_of_fused_gelu_layer_is_used(kind, layer):
    # exact comparison: ConvNeXt's layer scale (1e-6 at init) shrinks the
    # adapter's effect on the output below allclose's tolerance
    torch.manual_seed(0)
    model = classifier(kind).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        lora_b = model.backbone.get_submodule(layer).lora_B['default']
        torch.nn.init.normal_(lora_b.weight)
        assert not torch.equal(model(x), before)
        lora_b.weight.zero_()
        assert torch.equal(model(x), before)


def test_pretrained_weights_load_into_base_layers(tmp_path):
    torch.manual_seed(1)
    source = MODELS.build(VIT)
    path = tmp_path / 'official.pth'
    torch.save(source.state_dict(), path)
    model = MODELS.build(dict(
        type='DINOv3Classifier',
        backbone=dict(VIT, init_cfg=dict(type='Pretrained',
                                         checkpoint=str(path))),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=128),
        lora=dict(r=2, alpha=4)))
    qkv = model.backbone.blocks[0].attn.qkv
    torch.testing.assert_close(qkv.base_layer.weight,
                               source.blocks[0].attn.qkv.weight)
    lora_a = qkv.lora_A['default'].weight.clone()
    model.init_weights()  # the Runner's call changes nothing
    torch.testing.assert_close(qkv.base_layer.weight,
                               source.blocks[0].attn.qkv.weight)
    torch.testing.assert_close(qkv.lora_A['default'].weight, lora_a)
    x = torch.randn(1, 3, 32, 32)
    source.eval(), model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.extract_feat(x)[0], source(x)[0])


def test_apply_lora_to_backbone_and_errors():
    backbone = MODELS.build(VIT)
    apply_lora(backbone, r=2, target_modules=('qkv', ))
    names = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert len(names) == 4 and all('attn.qkv.lora_' in n for n in names)
    with pytest.raises(ValueError, match='target_modules'):
        apply_lora(MODELS.build(VIT), target_modules=('nothing', ))


def test_gradient_checkpointing_gives_same_adapter_grads():
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = MODELS.build(dict(
            type='DINOv3Classifier', backbone=dict(VIT, with_cp=with_cp),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=128),
            lora=dict(r=2, alpha=4)))
        model.train()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        model(x).sum().backward()
        grads.append(model.backbone.blocks[0].attn.qkv.lora_B[
            'default'].weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
