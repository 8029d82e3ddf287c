from tests.cli_helpers import run_cli


def test_validate_ok():
    result = run_cli("validate", "configs/smoke.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok: configs/smoke.yaml" in result.stderr


def test_bad_config_is_one_line_exit_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"output: {tmp_path / 'out'}\ndistributions:\n  gender: {{female: 0.9}}\n")
    for command in ("validate", "build"):
        result = run_cli(command, str(bad))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "distributions" in lines[0] and "sum to 0.9" in lines[0]
    assert not (tmp_path / "out").exists()


def test_plan_prints_specs():
    result = run_cli("plan", "configs/smoke.yaml", "--show", "2")
    assert result.returncode == 0 and len(result.stdout.strip().splitlines()) == 2
