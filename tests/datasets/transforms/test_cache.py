"""CachedTransforms: deterministic steps run once per sample, replayed as
copies that later augmentations cannot change."""
import numpy as np
import pytest
from PIL import Image

from dinov3_mm.datasets.transforms import CachedTransforms
from dinov3_mm.registry import TRANSFORMS


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f'img_{i}.png'
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), np.uint8)).save(
            path)
        paths.append(str(path))
    return paths


class CountingStep:
    """A wrapped step that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, results):
        self.calls += 1
        return results


def build(**kwargs):
    return TRANSFORMS.build(dict(
        type='CachedTransforms',
        transforms=[dict(type='LoadImage'),
                    dict(type='ResizeKeepRatioPad', size=16)], **kwargs))


def test_replays_the_same_output_without_rerunning(images):
    cached = build()
    counter = CountingStep()
    cached.transforms.append(counter)
    first = [cached(dict(img_path=p, gt_label=i))
             for i, p in enumerate(images)]
    second = [cached(dict(img_path=p, gt_label=i))
              for i, p in enumerate(images)]
    assert counter.calls == 3 and cached.cached_samples == 3
    for a, b in zip(first, second):
        assert a['img'].shape == (16, 16, 3)
        np.testing.assert_array_equal(a['img'], b['img'])
        assert a['img_shape'] == b['img_shape']
        assert a['gt_label'] == b['gt_label']


def test_in_place_changes_downstream_do_not_reach_the_cache(images):
    cached = build()
    out = cached(dict(img_path=images[0]))
    clean = out['img'].copy()
    out['img'][:] = 0
    out['extra'] = 'added later'
    again = cached(dict(img_path=images[0]))
    np.testing.assert_array_equal(again['img'], clean)
    assert 'extra' not in again


def test_keeps_per_call_keys_of_the_input(images):
    cached = build()
    cached(dict(img_path=images[0], sample_idx=0))
    out = cached(dict(img_path=images[0], sample_idx=7))
    assert out['sample_idx'] == 7


def test_stops_growing_at_max_bytes(images):
    one_image = 16 * 16 * 3
    cached = build(max_bytes=2 * one_image)
    counter = CountingStep()
    cached.transforms.append(counter)
    for _ in range(2):
        for path in images:
            assert cached(dict(img_path=path))['img'].shape == (16, 16, 3)
    assert cached.cached_samples == 2
    # the third image did not fit, so it was computed in both passes
    assert counter.calls == 4


def test_samples_without_a_file_are_not_cached():
    counter = CountingStep()
    cached = CachedTransforms([counter])
    cached(dict(img=np.zeros((2, 2, 3), np.uint8)))
    cached(dict(img=np.zeros((2, 2, 3), np.uint8)))
    assert counter.calls == 2 and cached.cached_samples == 0


def test_negative_budget_is_refused():
    with pytest.raises(ValueError, match='max_bytes'):
        CachedTransforms([], max_bytes=-1)


def test_missing_image_still_fails_and_names_it(tmp_path):
    cached = build()
    missing = str(tmp_path / 'missing.png')
    with pytest.raises(ValueError, match='missing.png'):
        cached(dict(img_path=missing))


def test_flatten_cached_unwraps_configs_and_transforms():
    from dinov3_mm.datasets.transforms import flatten_cached
    load, resize = dict(type='LoadImage'), dict(type='ResizeKeepRatioPad',
                                                size=8)
    pack = dict(type='PackClsInputs')
    steps = [dict(type='CachedTransforms', transforms=[load, resize]), pack]
    assert flatten_cached(steps) == [load, resize, pack]
    built = CachedTransforms([load, resize])
    flat = flatten_cached([built, pack])
    assert [type(t).__name__ for t in flat[:2]] == ['LoadImage',
                                                    'ResizeKeepRatioPad']
    assert flat[2] is pack
