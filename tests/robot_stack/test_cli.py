import subprocess
import sys

from robot_stack import cli


def test_help_lists_every_subcommand(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_console_script_runs_and_reports_version():
    out = subprocess.run([sys.executable, "-m", "robot_stack.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("robot-stack ")


def test_unknown_subcommand_is_a_usage_error(capsys):
    try:
        code = cli.main(["definitely-not-a-command"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_subcommand_module_has_the_interface():
    import importlib

    for name, (module, _) in cli.SUBCOMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run), name
