"""The plugin package: entry point and declared dependencies."""


def test_entry_point_and_dependencies(plugin_site):
    (info, ) = plugin_site.glob('dinov3_mm_medical-*.dist-info')
    entry_points = (info / 'entry_points.txt').read_text()
    assert '[dinov3_mm.plugins]' in entry_points
    assert 'medical = dinov3_mm_medical.components' in entry_points
    requires = [line.split(':', 1)[1].strip()
                for line in (info / 'METADATA').read_text().splitlines()
                if line.startswith('Requires-Dist:')]
    assert sorted(requires) == ['nibabel>=5', 'pydicom>=2.4']
    for package in ('io', 'transforms', 'datasets'):
        assert (plugin_site / 'dinov3_mm_medical' / package /
                '__init__.py').is_file()
