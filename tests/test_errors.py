"""Errors a user can fix are one line and exit code 2; anything else keeps its traceback."""

import pytest
import yaml
from conftest import tiny_params

from hrnet import cli
from hrnet.errors import DataError, InputError, MissingFileError, UserError
from pipeline.common import run_stage


def write_params(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))
    return params


@pytest.mark.parametrize(
    "error", [DataError("a.json: bad"), InputError("x: bad"), MissingFileError("y: gone")]
)
def test_a_user_error_is_one_line_and_exit_code_2(tmp_path, capsys, error):
    def stage(params):
        raise error

    with pytest.raises(SystemExit) as exited:
        run_stage(stage, write_params(tmp_path))
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {error}\n"
    assert isinstance(error, UserError)


@pytest.mark.parametrize("bug", [ValueError("operands could not be broadcast"), FileNotFoundError(2, "x")])
def test_any_other_error_keeps_its_traceback(tmp_path, bug):
    def stage(params):
        raise bug

    with pytest.raises(type(bug)):  # not SystemExit(2): a bug is reported, not disguised as bad input
        run_stage(stage, write_params(tmp_path))


def test_the_hrnet_command_tells_the_two_apart(monkeypatch, capsys):
    args = cli.build_parser("summary").parse_args(["summary"])
    monkeypatch.setattr(cli, "build_parser", lambda only=None: _Parsed(args))
    args.run = lambda _: (_ for _ in ()).throw(InputError("--model: bad"))
    assert cli.main(["summary"]) == 2
    assert capsys.readouterr().err == "hrnet summary: error: --model: bad\n"
    args.run = lambda _: (_ for _ in ()).throw(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["summary"])


class _Parsed:
    def __init__(self, args):
        self.args = args

    def parse_args(self, argv):
        return self.args
