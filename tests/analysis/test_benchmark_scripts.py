"""The benchmark scripts start from the repository root, as documented."""
import pytest

SCRIPTS = ('benchmark_backbone.py', 'benchmark_deploy.py',
           'benchmark_linear_probe.py', 'benchmark_seg_inference.py',
           'benchmark_ssl_step.py', 'benchmark_train_step.py',
           'benchmark_fsdp_memory.py', 'benchmark_train_e2e.py',
           'benchmark_distill_step.py', 'benchmark_coco_eval.py',
           'benchmark_detr_step.py')


@pytest.mark.parametrize('script', SCRIPTS)
def test_script_imports_its_benchmark_code(script, repo_root, run_python):
    proc = run_python(args=[f'tools/analysis/{script}', '--help'],
                      cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('usage: '), proc.stdout
