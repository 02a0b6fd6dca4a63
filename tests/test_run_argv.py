"""The command line read before the real parse (``seqlit.run.argv``): exact argv lists in, exact values out."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqlit.run.argv import class_path, condense_parse_error, reorder_with_overlay, same_class, scan_argv

DEFAULTS = {"ckpt_path": None, "experiment": "seqlit", "default_root_dir": None, "model": None, "data": None}


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_no_subcommand_is_none():
    assert scan_argv(["--help"]) is None
    assert scan_argv([]) is None


def test_flags_with_a_space_or_an_equals_sign_read_the_same():
    spaced = ["fit", "--ckpt_path", "last", "--experiment", "e", "--trainer.default_root_dir", "out"]
    joined = ["fit", "--ckpt_path=last", "--experiment=e", "--trainer.default_root_dir=out"]
    expected = DEFAULTS | {"subcommand": "fit", "ckpt_path": "last", "experiment": "e", "default_root_dir": "out"}
    assert scan_argv(spaced) == expected
    assert scan_argv(joined) == expected


def test_later_config_files_and_flags_win(tmp_path):
    a = write(tmp_path / "a.yaml", "experiment: a\ntrainer:\n  default_root_dir: ra\nmodel: seqlit.tasks.Forecaster\n")
    b = write(tmp_path / "b.yaml", "experiment: b\ndata:\n  class_path: seqlit.data.SineDataModule\n")
    assert scan_argv(["test", "--config", a, "-c", b]) == DEFAULTS | {
        "subcommand": "test",
        "experiment": "b",
        "default_root_dir": "ra",  # b does not set it: a's stays
        "model": "seqlit.tasks.Forecaster",  # a string section names the class
        "data": "seqlit.data.SineDataModule",  # a dict section names it by class_path
    }
    assert scan_argv(["test", "--experiment", "flag", f"--config={b}"])["experiment"] == "b"
    assert scan_argv(["test", f"--config={b}", "--experiment", "flag"])["experiment"] == "flag"


def test_model_short_name_and_class_path_flag(tmp_path):
    cfg = write(tmp_path / "c.yaml", "model:\n  class_path: seqlit.tasks.Forecaster\n  init_args: {lr: 0.1}\n")
    assert scan_argv(["predict", "--config", cfg, "--model", "Classifier"])["model"] == "Classifier"
    assert scan_argv(["predict", "--model.class_path", "seqlit.tasks.Classifier"])["model"] == "seqlit.tasks.Classifier"
    assert scan_argv(["predict", "--data=SineDataModule"])["data"] == "SineDataModule"
    # an inline mapping is left to the real parse; the config file's class stays
    assert scan_argv(["predict", "--config", cfg, "--model", '{"lr": 1}'])["model"] == "seqlit.tasks.Forecaster"


def test_a_missing_or_non_mapping_config_is_left_to_the_real_parse(tmp_path):
    listed = write(tmp_path / "list.yaml", "- 1\n- 2\n")
    assert scan_argv(["fit", "--config", listed]) == DEFAULTS | {"subcommand": "fit"}
    assert scan_argv(["fit", "--config", str(tmp_path / "absent.yaml")]) == DEFAULTS | {"subcommand": "fit"}


def test_class_path_of_each_form():
    assert class_path("Forecaster") == "Forecaster"
    assert class_path({"class_path": "seqlit.tasks.Forecaster", "init_args": {}}) == "seqlit.tasks.Forecaster"
    assert class_path({"init_args": {"lr": 1}}) is None
    assert class_path(' {"class_path": "x"}') is None
    assert class_path("") is None and class_path(None) is None and class_path(3) is None


def test_reorder_puts_configs_then_the_overlay_then_the_flags():
    argv = ["fit", "--model.lr", "0.1", "--config", "a.yaml", "--ckpt_path", "last", "--config=b.yaml", "-c", "c.yaml"]
    assert reorder_with_overlay(argv, "fit", "ckpt.yaml") == [
        "fit", "--config", "a.yaml", "--config=b.yaml", "-c", "c.yaml", "--config", "ckpt.yaml",
        "--model.lr", "0.1", "--ckpt_path", "last",
    ]  # fmt: skip
    # options before the subcommand stay where they are; a trailing --config without a value is a flag like others
    assert reorder_with_overlay(["-v", "test", "--config"], "test", "o.yaml") == [
        "-v", "test", "--config", "o.yaml", "--config",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("seqlit.tasks.Forecaster", "seqlit.tasks.Forecaster", True),
        ("seqlit.tasks.Forecaster", "Forecaster", True),  # the short name jsonargparse accepts
        ("seqlit.data.SineDataModule", "SineDataModule", True),
        ("seqlit.tasks.Forecaster", "seqlit.tasks.Classifier", False),
        ("no.such.Thing", "Forecaster", False),
    ],
)
def test_same_class(a, b, same):
    assert same_class(a, b) is same


def test_condense_parse_error_names_the_key_and_the_innermost_reason():
    message = (
        'Parser key "model":\n  Does not validate against any of the types:\n'
        "  - Problem with given class_path 'seqlit.tasks.Forecaster':\n"
        '    Parser key "cell":\n'
        "      Expected a typing.Literal['rnn', 'lstm', 'gru', 'scratch']. Got value: transformer\n"
        "  - Expected a <class 'NoneType'>. Got value: {...}\n"
    )
    assert condense_parse_error(message) == (
        "model.cell: Expected a typing.Literal['rnn', 'lstm', 'gru', 'scratch']. Got value: transformer"
    )
    assert condense_parse_error("Validation failed: Key 'x' is required") == "Validation failed: Key 'x' is required"
    assert condense_parse_error("something\n   else  entirely") == "something else entirely"


def test_the_module_docstring_examples_hold():
    import doctest

    import seqlit.run.argv

    result = doctest.testmod(seqlit.run.argv, verbose=False)
    assert result.attempted > 0 and result.failed == 0
