"""TextCachedConfig: mmengine's config text, formatted once per content."""
import copy
from unittest import mock

from mmengine.config import Config

from dinov3_mm.engine.runner.config_text import TextCachedConfig


def test_text_is_mmengines_and_follows_changes():
    plain = Config(dict(model=dict(type='X', depth=2), lr=0.1))
    cached = TextCachedConfig.of(plain)
    assert isinstance(cached, TextCachedConfig) and cached.lr == 0.1
    assert TextCachedConfig.of(cached) is cached
    assert isinstance(copy.deepcopy(cached), TextCachedConfig)
    text = plain.pretty_text
    assert cached.pretty_text == text
    with mock.patch.object(Config, 'pretty_text',
                           new_callable=mock.PropertyMock) as formatter:
        formatter.return_value = 'formatted'
        assert cached.pretty_text == text  # kept, not formatted again
        assert formatter.call_count == 0
        cached.model.depth = 3  # a change formats again
        assert cached.pretty_text == 'formatted'
        assert formatter.call_count == 1
    cached.model.depth = 4
    assert 'depth=4' in cached.pretty_text
    assert 'depth=2' in plain.pretty_text  # a copy, not a view
