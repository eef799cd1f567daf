"""Progress bars: shown at a terminal or when forced, never in pipes."""
import io

import pytest

from dinov3_mm.utils.progress import PROGRESS_ENV, progress_enabled, track


class _Terminal(io.StringIO):

    def isatty(self):
        return True


@pytest.mark.parametrize('value, expected', [('1', True), ('yes', True),
                                             ('0', False), ('off', False)])
def test_environment_forces_the_bar(monkeypatch, value, expected):
    monkeypatch.setenv(PROGRESS_ENV, value)
    assert progress_enabled(io.StringIO()) is expected
    assert progress_enabled(_Terminal()) is expected


def test_terminal_decides_without_the_environment(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert progress_enabled(_Terminal()) is True
    assert progress_enabled(io.StringIO()) is False


def test_bar_shows_label_counts_and_keeps_items(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, '1')
    items = list(track(range(5), 'Counting shapes', unit='img'))
    assert items == [0, 1, 2, 3, 4]
    err = capsys.readouterr().err
    assert 'Counting shapes' in err and '/5' in err and 'img' in err


def test_no_bar_in_a_pipe(monkeypatch, capsys):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    source = iter([1, 2])
    assert track(source, 'Counting shapes') is source
    assert list(track([1, 2], 'Counting shapes')) == [1, 2]
    assert capsys.readouterr().err == ''


def test_total_for_iterables_without_length(monkeypatch, capsys):
    monkeypatch.setenv(PROGRESS_ENV, '1')
    assert sum(track((i for i in range(3)), 'Gen', total=3)) == 3
    assert '/3' in capsys.readouterr().err
