"""The apps' command-line plumbing: expected failures are one line on stderr with the right exit status."""
import pytest

from matnet_torch.apps.common.checkpoint import CheckpointError
from matnet_torch.apps.common.cli import ArgumentParser, ToolError, UsageError, output_directory, run_tool


class DataError(ValueError):
    """Stands for an app's own expected error type (MNISTDataError for the MNIST app)."""


def parse(argv):
    parser = ArgumentParser(prog="tool")
    parser.add_argument("--epochs", type=int, default=1)
    return parser.parse_args(argv)


def body_raising(error):
    def body(argv):
        parse(argv)
        raise error
    return body


# (what the body raises, exit status, the line on stderr)
FAILURES = {
    "usage": (UsageError("--lr must be > 0, got -1.0"), 2, "tool: --lr must be > 0, got -1.0"),
    "tool": (ToolError("training diverged in epoch 3"), 1, "tool: training diverged in epoch 3"),
    "checkpoint": (CheckpointError("c.pt: no such file"), 1, "tool: c.pt: no such file"),
    "os": (PermissionError(13, "Permission denied", "out/metrics.json"), 1, "tool: out/metrics.json: Permission denied"),
    "expected": (DataError("train-images: truncated"), 1, "tool: train-images: truncated"),
    "multi-line": (ToolError("first\n  second"), 1, "tool: first second"),
    "interrupt": (KeyboardInterrupt(), 130, "tool: interrupted"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_expected_failures_are_one_line(case, capsys):
    error, status, line = FAILURES[case]
    assert run_tool("tool", body_raising(error), [], expected=(DataError,)) == status
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


@pytest.mark.parametrize("argv, line", [
    (["--epochs", "x"], "tool: argument --epochs: invalid int value: 'x' (see --help)"),
    (["--bogus"], "tool: unrecognized arguments: --bogus (see --help)"),
])
def test_parse_errors_are_one_line_usage_errors(argv, line, capsys):
    assert run_tool("tool", lambda argv: parse(argv) and 0, argv) == 2
    assert capsys.readouterr().err == line + "\n"


def test_debug_adds_the_traceback_before_the_line(capsys):
    assert run_tool("tool", body_raising(ToolError("broken")), ["--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.endswith("\ntool: broken\n")


def test_bugs_are_not_hidden():
    with pytest.raises(ZeroDivisionError):
        run_tool("tool", lambda argv: 1 // 0, [])


def test_success_returns_the_body_status():
    assert run_tool("tool", lambda argv: parse(argv).epochs - 5, ["--epochs", "5"]) == 0


def test_output_directory(tmp_path):
    assert output_directory(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b") and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ToolError, match=f"--out {tmp_path / 'file'}: is a file, not a directory"):
        output_directory(str(tmp_path / "file"))
    with pytest.raises(ToolError, match=f"--save {tmp_path / 'file' / 'sub'}: cannot create the directory: Not a directory"):
        output_directory(str(tmp_path / "file" / "sub"), option="--save")
