"""The README walk's marker: ``pytest -m readme_walk tests/docs`` (what
``make docs-check`` runs) selects the slow part that executes commands."""


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'readme_walk: runs the documented commands on tiny '
        'settings (minutes; make docs-check)')
