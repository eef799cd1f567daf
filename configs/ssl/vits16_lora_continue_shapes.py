# As vits16_continue_shapes.py, but only LoRA adapters (rank 8) of the
# backbone and the projection heads train: a small, cheap continuation that
# cannot drift far from the released weights. `tools/merge_lora.py` folds
# the adapters into the weights afterwards.
_base_ = ['./vits16_continue_shapes.py']
model = dict(lora=dict(r=8, alpha=16), gram_loss_weight=0.0)
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(layer_decay_rate=1.0, patch_embed_lr_mult=1.0))
