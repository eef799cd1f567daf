"""Data sample of detection and instance segmentation."""
from mmengine.structures import BaseDataElement, InstanceData


class DetDataSample(BaseDataElement):
    """One image's objects: ground truth and predictions.

    Fields:
        gt_instances (InstanceData): the objects a model learns from, in the
            coordinates of the packed image (after resize, flip and crop;
            padding is at the right and bottom only, so it does not move
            them): ``bboxes`` float ``(N, 4)`` x1, y1, x2, y2 in pixels,
            ``labels`` long ``(N,)`` contiguous class indices and, for
            instance segmentation, ``masks`` bool ``(N, H, W)`` at the packed
            image size. Crowd regions are not in it.
        pred_instances (InstanceData): the model's objects in the original
            image's coordinates: ``bboxes`` ``(K, 4)``, ``scores`` ``(K,)``,
            ``labels`` ``(K,)`` and, for mask models, ``masks`` bool
            ``(K, H_ori, W_ori)``.

    Meta information (``metainfo``): ``img_path``, ``img_id``, ``ori_shape``
    ``(h, w)``, ``img_shape`` ``(h, w)`` after the geometric transforms,
    ``scale_factor`` ``(sx, sy)`` from original to packed image,
    ``border`` ``(left, top)`` letterbox offset in packed pixels, ``flip``,
    ``batch_input_shape`` (set by the data preprocessor) and ``ori_gt`` (the
    original annotations for evaluation, see
    :data:`ORI_GT_KEYS`).
    """

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances


#: Keys of ``metainfo['ori_gt']``: the image's annotations in original
#: coordinates, crowd ones included, as evaluation needs them.
ORI_GT_KEYS = ('bboxes', 'labels', 'iscrowd', 'masks')
