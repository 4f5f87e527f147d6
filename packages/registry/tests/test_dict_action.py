"""DictAction: --cfg-options KEY=VALUE parsing for argparse."""

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camshaft.registry import Config, DictAction


def make_parser(**kwargs):
    parser = argparse.ArgumentParser(prog="train")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, **kwargs)
    return parser


def test_values_are_parsed_into_python_types():
    args = make_parser().parse_args(
        [
            "--cfg-options",
            "a=1",
            "b.c=[1,2]",
            "d=(3,4)",
            "e=True",
            "f=None",
            "g=abc",
            "h=[(1,2),[3,'a']]",
            'i="x,y"',
            "j=0.5",
            "k=false",
            "l=1e-3",
        ]
    )
    assert args.cfg_options == {
        "a": 1,
        "b.c": [1, 2],
        "d": (3, 4),
        "e": True,
        "f": None,
        "g": "abc",
        "h": [(1, 2), [3, "a"]],
        "i": "x,y",
        "j": 0.5,
        "k": False,
        "l": 1e-3,
    }
    assert type(args.cfg_options["a"]) is int
    assert type(args.cfg_options["j"]) is float


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2,3", [1, 2, 3]),
        ("a,b", ["a", "b"]),
        ("[]", []),
        ("()", ()),
        ("(1,)", (1,)),
        ("[1,]", [1]),
        ("", ""),
        ("it's", "it's"),
        ("'quoted [not a list]'", "quoted [not a list]"),
        (" [ 1 , 'a]' ] ", [1, "a]"]),
        ("[[1,[2,(3,)]],4]", [[1, [2, (3,)]], 4]),
        ("TRUE", True),
        ("none", "none"),
        ("path/to/file.pth", "path/to/file.pth"),
        ("-7", -7),
    ],
)
def test_parse_value(text, expected):
    result = DictAction.parse_value(text)
    assert result == expected
    assert type(result) is type(expected)


def test_several_occurrences_merge_and_later_values_win():
    args = make_parser().parse_args(["--cfg-options", "a=1", "b=2", "--cfg-options", "b=3", "c=4"])
    assert args.cfg_options == {"a": 1, "b": 3, "c": 4}


def test_default_dict_is_merged_into_not_mutated():
    default = {"a": 0, "z": 9}
    args = make_parser(default=default).parse_args(["--cfg-options", "a=1"])
    assert args.cfg_options == {"a": 1, "z": 9}
    assert default == {"a": 0, "z": 9}
    assert make_parser().parse_args([]).cfg_options is None


def test_single_value_without_nargs_works():
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt", action=DictAction)
    assert parser.parse_args(["--opt", "x=[1]"]).opt == {"x": [1]}


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("novalue", "'novalue'"),
        ("=5", "'=5'"),
        ("a=[1,2", "'a=[1,2'"),
        ("a=(1]", "'a=(1]'"),
        ('a="open', "quote"),
        ("a=1,,2", "empty item"),
    ],
)
def test_bad_tokens_are_argparse_errors_naming_the_token(capsys, token, fragment):
    with pytest.raises(SystemExit) as info:
        make_parser().parse_args(["--cfg-options", token])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--cfg-options" in err
    assert fragment in err


def test_result_feeds_config_merge_from_dict():
    args = make_parser().parse_args(["--cfg-options", "model.depth=50", "layers.0.k=[3,3]"])
    cfg = Config(dict(model=dict(depth=18), layers=[dict(k=1)]))
    cfg.merge_from_dict(args.cfg_options)
    assert cfg.model.depth == 50
    assert cfg.layers[0].k == [3, 3]


SIMPLE = (
    st.integers()
    | st.booleans()
    | st.none()
    | st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,10}", fullmatch=True).filter(
        lambda s: s.lower() not in ("true", "false", "none", "nan", "inf", "infinity")
    )
)
NESTED = st.recursive(
    SIMPLE, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner), max_leaves=10
)


def _format(value):
    if isinstance(value, list):
        return "[" + ",".join(_format(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ",".join(_format(v) for v in value) + ")"
    return str(value)


@given(NESTED)
def test_formatted_values_parse_back(value):
    assert DictAction.parse_value(_format(value)) == value
