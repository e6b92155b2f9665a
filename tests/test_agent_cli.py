"""The agent's command line documents every command and option."""

from agent_support import run_agent


def test_help_lists_every_command():
    done = run_agent("--help")
    assert done.returncode == 0
    for command in ("run", "probe", "check", "serve-queries"):
        assert command in done.stdout


def test_subcommand_help_documents_options():
    expected = {"run": ["SPEC.json"], "probe": ["--seconds", "--hz", "--probe", "--sysfs-root", "--vcgencmd"],
                "check": ["--workdir", "--sysfs-root", "--vcgencmd"]}
    for command, options in expected.items():
        done = run_agent(command, "--help")
        assert done.returncode == 0
        for option in options:
            assert option in done.stdout, (command, option)


def test_unreadable_spec_exits_2_without_output(tmp_path):
    done = run_agent("run", str(tmp_path / "missing.json"))
    assert done.returncode == 2 and "cannot read run spec" in done.stderr
