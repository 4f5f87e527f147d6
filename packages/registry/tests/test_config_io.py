"""Per-format reading and writing: parse errors, writer details, property round trips."""

import builtins
import datetime
import enum
import json
import math
import sys
from collections import OrderedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camshaft.registry import Config, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")


class Color(enum.Enum):
    RED = 1


def _local_class():
    class Inner:
        pass

    return Inner


# -- parse errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        ("bad.json", '{\n  "a": 1,\n  "b": \n}', ["line 4", "invalid JSON"]),
        ("bad.toml", "a = 1\nb = = 2\n", ["invalid TOML", "line 2"]),
        ("bad.yaml", "a: [1, 2\nb: 3\n", ["invalid YAML", "line"]),
    ],
)
def test_parse_errors_name_the_file_and_the_line(tmp_path, name, text, fragments):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_empty_yaml_file_is_an_empty_config(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    assert len(Config.fromfile(path)) == 0


def test_missing_pyyaml_is_a_config_error_with_the_install_hint(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    with pytest.raises(ConfigError, match=r"pip install 'camshaft-registry\[yaml\]'"):
        Config.fromfile(path)
    with pytest.raises(ConfigError, match=r"camshaft-registry\[yaml\]"):
        Config(dict(a=1)).dump(tmp_path / "out.yml")


def test_missing_tomli_on_python_310_is_a_config_error_with_the_hint(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text("a = 1\n")
    monkeypatch.setitem(sys.modules, "tomli", None)
    monkeypatch.setattr(sys, "version_info", (3, 10, 0, "final", 0))
    with pytest.raises(ConfigError, match="pip install tomli"):
        Config.fromfile(path)


def test_yaml_reading_is_safe(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("a: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        Config.fromfile(path)


# -- writing: what each format cannot hold ---------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "data", "fragments"),
    [
        (".toml", {"model": {"head": {"bias": None}}}, ["'model.head.bias'", "None"]),
        (".toml", {"a": [1, {"b": None}]}, ["'a.1.b'"]),
        (".toml", {"big": 2**70}, ["'big'", "64-bit"]),
        (".toml", {"a": {1: "x"}}, ["'a.1'", "strings"]),
        (".json", {"model": {"type": OrderedDict}}, ["'model.type'", "JSON"]),
        (".json", {"a": {1: 2}}, ["'a.1'", "strings"]),
        (".yaml", {"layers": [object()]}, ["'layers.0'", "object"]),
        (".py", {"thing": object()}, ["'thing'", "object"]),
        (".py", {"model": {"type": _local_class()}}, ["'model.type'", "import"]),
        (".py", {"_private": 1}, ["'_private'", "private"]),
        (".py", {3: "x"}, ["3", "strings"]),
    ],
)
def test_values_a_format_cannot_hold_raise_naming_the_key(tmp_path, suffix, data, fragments):
    target = tmp_path / f"out{suffix}"
    with pytest.raises(ConfigError) as info:
        Config(data).dump(target)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert not target.exists()


def test_self_containing_config_is_an_error_not_a_recursion(tmp_path):
    data = {"a": [1]}
    data["a"].append(data["a"])
    for suffix in (".py", ".json", ".toml", ".yaml"):
        with pytest.raises(ConfigError, match="contains itself"):
            Config(data).dump(tmp_path / f"out{suffix}")


def test_dump_to_unknown_extension_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"'\.cfg'.*\.py"):
        Config(dict(a=1)).dump(tmp_path / "out.cfg")


def test_tuples_become_lists_outside_python(tmp_path):
    cfg = Config(dict(size=(224, 224)))
    for suffix in (".json", ".toml", ".yaml"):
        assert Config.fromfile(cfg.dump(tmp_path / f"o{suffix}")).size == [224, 224]
    assert Config.fromfile(cfg.dump(tmp_path / "o.py")).size == (224, 224)


# -- the TOML writer ----------------------------------------------------------------------------


def test_toml_output_is_structured_and_reads_back(tmp_path):
    cfg = Config(
        dict(
            lr=0.1,
            model=dict(type="A", norm=dict(eps=1e-5)),
            hooks=[dict(type="H", p=1), dict(type="I", sub=dict(q=2))],
            mixed=[1, "a", [True, 2.5], dict(inline=1)],
            empty=dict(),
            deep=dict(only=dict(leaf=1)),
        )
    )
    path = cfg.dump(tmp_path / "c.toml")
    text = path.read_text()
    assert "[model]" in text
    assert "[model.norm]" in text
    assert text.count("[[hooks]]") == 2
    assert "[hooks.sub]" in text
    assert "[empty]" in text
    assert "[deep]\n" not in text  # implied by [deep.only]
    assert tomllib.loads(text) == cfg.to_dict()


def test_toml_strings_and_keys_are_escaped():
    data = {
        "odd key": 'quote " backslash \\ tab \t nl \n del \x7f nul \x00 é',
        "k": {"a.b": 1, "": 2},
        "floats": [float("inf"), -float("inf"), 1e300, -0.0, 5e-324],
    }
    text = Config(data).dump()  # no filename: Python; check TOML explicitly below
    assert text
    toml_text = Config(data, filename="x.toml").dump()
    loaded = tomllib.loads(toml_text)
    assert loaded == data
    nan_text = Config(dict(x=float("nan")), filename="x.toml").dump()
    assert math.isnan(tomllib.loads(nan_text)["x"])


def test_toml_dates_round_trip(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text("when = 2024-05-01T10:00:00+02:00\nday = 2024-05-01\nat = 07:30:00\n")
    cfg = Config.fromfile(path)
    assert isinstance(cfg.when, datetime.datetime)
    for suffix in (".toml", ".py"):
        assert Config.fromfile(cfg.dump(tmp_path / f"o{suffix}")) == cfg
    with pytest.raises(ConfigError, match=r"'at'.*time"):  # YAML has dates, not times
        cfg.dump(tmp_path / "o.yaml")
    del cfg.at
    assert Config.fromfile(cfg.dump(tmp_path / "o.yaml")) == cfg


# -- the Python writer ----------------------------------------------------------------------------


def test_python_dump_imports_classes_under_private_aliases(tmp_path):
    cfg = Config(dict(model=dict(type=OrderedDict, act=math.sqrt, dtype=float, color=Color.RED)))
    path = cfg.dump(tmp_path / "c.py")
    text = path.read_text()
    assert "from collections import OrderedDict as _OrderedDict" in text
    assert "from math import sqrt as _sqrt" in text
    assert "dtype=float" in text
    assert "OrderedDict" not in Config.fromfile(path)  # the alias is private: no extra key
    assert Config.fromfile(path) == cfg


def test_python_dump_imports_under_the_key_name_when_the_key_holds_the_class(tmp_path):
    cfg = Config(dict(OrderedDict=OrderedDict, model=dict(type=OrderedDict)))
    text = cfg.dump(tmp_path / "c.py").read_text()
    assert "from collections import OrderedDict\n" in text
    assert "OrderedDict = OrderedDict" not in text
    assert "model = dict(type=OrderedDict)" in text
    assert Config.fromfile(tmp_path / "c.py") == cfg


def test_python_dump_handles_keywords_non_identifiers_and_shadowed_builtins(tmp_path):
    cfg = Config(
        {
            "if": 1,
            "a-b": {"class": 2, "ok": 3},
            "dict": dict(x=1),
            "float": float("inf"),
            "globals": [float("nan")],
            "frozen": frozenset({1}),
            "nums": {1: "one", (2, 3): "pair"},
        }
    )
    path = cfg.dump(tmp_path / "c.py")
    text = path.read_text()
    assert "from builtins import dict as _dict" in text
    assert "{'class': 2, 'ok': 3}" in text
    loaded = Config.fromfile(path)
    assert math.isnan(loaded["globals"][0])
    plain = cfg.to_dict()
    plain.pop("globals")
    assert {k: loaded[k] for k in plain} == plain


def test_python_dump_breaks_long_values_over_lines():
    cfg = Config(dict(pipeline=[dict(type=f"Transform{i}", scale=(1333, 800)) for i in range(5)]))
    lines = cfg.dump().splitlines()
    assert lines[0] == "pipeline = ["
    assert lines[1] == "    dict(type='Transform0', scale=(1333, 800)),"
    assert lines[-1] == "]"


def test_empty_config_dumps_to_empty_python_and_reads_back(tmp_path):
    path = Config().dump(tmp_path / "e.py")
    assert path.read_text() == ""
    assert len(Config.fromfile(path)) == 0


# -- property-based round trips ---------------------------------------------------------------

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True) | st.sampled_from(
    ["dict", "float", "globals", "if", "class", "true", "null", "inf"]
)
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = INTS | FLOATS | st.booleans() | st.text(max_size=12)


def configs(allow_none):
    leaves = SCALARS | st.none() if allow_none else SCALARS
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
        max_leaves=15,
    )
    return st.dictionaries(KEYS, values, max_size=6)


ROUND_TRIP = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("suffix", [".py", ".json", ".yaml"])
@ROUND_TRIP
@given(data=configs(allow_none=True))
def test_dump_then_fromfile_round_trips(tmp_path, suffix, data):
    cfg = Config(data)
    assert Config.fromfile(cfg.dump(tmp_path / f"c{suffix}")).to_dict() == data


@ROUND_TRIP
@given(data=configs(allow_none=False))
def test_toml_dump_then_fromfile_round_trips(tmp_path, data):
    cfg = Config(data)
    assert Config.fromfile(cfg.dump(tmp_path / "c.toml")).to_dict() == data


@ROUND_TRIP
@given(data=configs(allow_none=True))
def test_pretty_text_evaluates_to_the_config(data):
    namespace = {"__builtins__": builtins}
    exec(Config(data).pretty_text, namespace)
    assert {k: namespace[k] for k in data} == data


@ROUND_TRIP
@given(data=configs(allow_none=True))
def test_json_and_yaml_text_match_the_standard_readers(data):
    yaml = pytest.importorskip("yaml")
    assert json.loads(Config(data, filename="c.json").dump()) == data
    assert yaml.safe_load(Config(data, filename="c.yaml").dump()) == data
