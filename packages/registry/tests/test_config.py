"""Config: reading files with _base_ inheritance, access, overrides, copying, errors."""

import copy
import os
import pickle
import sys
import textwrap

import pytest

from camshaft.registry import Config, ConfigDict, ConfigError, ConfigFileNotFoundError


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- reading ------------------------------------------------------------------------------


def test_fromfile_python_keeps_public_data_and_drops_private_names_and_modules(tmp_path):
    path = write(
        tmp_path,
        "cfg.py",
        """
        import os.path as osp
        import math
        _scale = 2
        lr = 0.1 * _scale
        name = osp.join('a', 'b')
        steps = [3, 6]
        shape = (224, 224)
        flag = None
        """,
    )
    cfg = Config.fromfile(path)
    assert cfg.to_dict() == {
        "lr": 0.2,
        "name": os.path.join("a", "b"),
        "steps": [3, 6],
        "shape": (224, 224),
        "flag": None,
    }
    assert cfg.filename == str(path)


def test_fromfile_python_keeps_classes_and_functions_used_as_types(tmp_path):
    path = write(
        tmp_path,
        "cfg.py",
        """
        from collections import OrderedDict

        class Local:
            pass

        def helper():
            return 1

        model = dict(type=OrderedDict, head=dict(type=Local))
        """,
    )
    cfg = Config.fromfile(path)
    assert cfg.model.type is __import__("collections").OrderedDict
    assert cfg.model.head.type.__name__ == "Local"
    assert cfg.helper() == 1
    assert "OrderedDict" in cfg


def test_fromfile_python_sees_its_own_file_name(tmp_path):
    path = write(tmp_path, "cfg.py", "here = __file__\n")
    assert Config.fromfile(path).here == str(path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.py", "model = dict(type='A', depth=50)\nlr = 0.1\n"),
        ("c.json", '{"model": {"type": "A", "depth": 50}, "lr": 0.1}'),
        ("c.toml", 'lr = 0.1\n[model]\ntype = "A"\ndepth = 50\n'),
        ("c.yaml", "model:\n  type: A\n  depth: 50\nlr: 0.1\n"),
        ("c.yml", "model: {type: A, depth: 50}\nlr: 0.1\n"),
    ],
)
def test_every_format_reads_to_the_same_config(tmp_path, name, text):
    cfg = Config.fromfile(write(tmp_path, name, text))
    assert cfg.to_dict() == {"model": {"type": "A", "depth": 50}, "lr": 0.1}
    assert type(cfg.model) is ConfigDict


def test_fromfile_accepts_str_and_relative_paths(tmp_path, monkeypatch):
    write(tmp_path, "cfg.json", '{"a": 1}')
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile("cfg.json")
    assert cfg.a == 1
    assert cfg.filename == os.path.join(str(tmp_path), "cfg.json")


def test_fromstring_parses_each_format():
    assert Config.fromstring("a = dict(b=1)", "py").a.b == 1
    assert Config.fromstring('{"a": 1}', ".json").a == 1
    assert Config.fromstring("a = 1", "toml").a == 1
    assert Config.fromstring("a: 1", "yaml").a == 1
    assert Config.fromstring("a = 1", "py").filename is None


def test_fromstring_resolves_base_against_the_working_folder(tmp_path, monkeypatch):
    write(tmp_path, "base.yml", "a: 1\nb: {c: 2}\n")
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromstring("_base_ = 'base.yml'\nb = dict(d=3)\n", "py")
    assert cfg.to_dict() == {"a": 1, "b": {"c": 2, "d": 3}}


def test_fromstring_errors_name_the_format_and_line():
    with pytest.raises(ConfigError, match=r"<py string>, line 2"):
        Config.fromstring("a = 1\nb = (\n", "py")
    with pytest.raises(ConfigError, match=r"'\.ini'.*\.py"):
        Config.fromstring("a = 1", "ini")


# -- inheritance --------------------------------------------------------------------------


def test_base_is_merged_first_and_child_overrides_key_by_key(tmp_path):
    write(
        tmp_path,
        "base.py",
        """
        model = dict(type='ResNet', depth=18, norm=dict(type='BN', eps=1e-5))
        lr = 0.1
        epochs = 10
        """,
    )
    child = write(
        tmp_path,
        "child.py",
        """
        _base_ = 'base.py'
        model = dict(depth=50, norm=dict(eps=1e-3))
        lr = 0.2
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.to_dict() == {
        "model": {"type": "ResNet", "depth": 50, "norm": {"type": "BN", "eps": 1e-3}},
        "lr": 0.2,
        "epochs": 10,
    }
    assert "_base_" not in cfg


def test_delete_replaces_the_base_dict_and_is_removed(tmp_path):
    write(tmp_path, "base.py", "norm = dict(type='BN', eps=1e-5, momentum=0.1)\n")
    child = write(
        tmp_path,
        "child.py",
        """
        _base_ = ['base.py']
        norm = dict(_delete_=True, type='GN', groups=32)
        """,
    )
    assert Config.fromfile(child).to_dict() == {"norm": {"type": "GN", "groups": 32}}


def test_delete_key_is_removed_even_without_a_base_value(tmp_path):
    path = write(tmp_path, "c.py", "a = dict(_delete_=True, b=dict(_delete_=False, c=1))\n")
    assert Config.fromfile(path).to_dict() == {"a": {"b": {"c": 1}}}


def test_non_dict_child_value_replaces_base_dict_and_vice_versa(tmp_path):
    write(tmp_path, "base.json", '{"a": {"x": 1}, "b": [1, 2], "c": 5}')
    child = write(tmp_path, "child.py", "_base_ = 'base.json'\na = None\nb = [3]\nc = dict(y=1)\n")
    assert Config.fromfile(child).to_dict() == {"a": None, "b": [3], "c": {"y": 1}}


def test_bases_of_mixed_formats_merge_in_order_recursively(tmp_path):
    write(tmp_path, "deep/root.yaml", "model:\n  type: A\n  depth: 18\nseed: 1\n")
    write(tmp_path, "deep/mid.toml", '_base_ = "root.yaml"\n[model]\ndepth = 34\n')
    write(tmp_path, "other.json", '{"seed": 2, "data": {"root": "x"}}')
    child = write(tmp_path, "child.py", "_base_ = ['deep/mid.toml', './other.json']\nlr = 0.1\n")
    assert Config.fromfile(child).to_dict() == {
        "model": {"type": "A", "depth": 34},
        "seed": 2,  # the later base wins
        "data": {"root": "x"},
        "lr": 0.1,
    }


def test_diamond_inheritance_is_not_a_cycle(tmp_path):
    write(tmp_path, "d.py", "x = dict(a=1)\n")
    write(tmp_path, "b.py", "_base_ = 'd.py'\nx = dict(b=2)\n")
    write(tmp_path, "c.py", "_base_ = 'd.py'\nx = dict(c=3)\n")
    top = write(tmp_path, "a.py", "_base_ = ['b.py', 'c.py']\n")
    assert Config.fromfile(top).x == {"a": 1, "b": 2, "c": 3}


def test_base_cycle_is_reported_with_the_chain(tmp_path):
    write(tmp_path, "a.py", "_base_ = 'b.py'\n")
    write(tmp_path, "b.py", "_base_ = './a.py'\n")
    with pytest.raises(ConfigError, match=r"a\.py -> b\.py -> a\.py"):
        Config.fromfile(tmp_path / "a.py")


def test_self_inheritance_is_a_cycle(tmp_path):
    path = write(tmp_path, "a.json", '{"_base_": "a.json"}')
    with pytest.raises(ConfigError, match=r"cycle: a\.json -> a\.json"):
        Config.fromfile(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", "int"), ("{'a': 1}", "dict"), ("['ok.py', 3]", r"_base_\[1\].*int")],
)
def test_base_of_the_wrong_type_is_an_error(tmp_path, value, expected):
    write(tmp_path, "ok.py", "a = 1\n")
    path = write(tmp_path, "c.py", f"_base_ = {value}\n")
    with pytest.raises(ConfigError, match=f"_base_.*{expected}"):
        Config.fromfile(path)


def test_missing_base_names_the_base_and_the_file_that_wants_it(tmp_path):
    path = write(tmp_path, "child.py", "_base_ = 'nope.py'\n")
    with pytest.raises(ConfigFileNotFoundError) as info:
        Config.fromfile(path)
    assert "nope.py" in str(info.value)
    assert "child.py" in str(info.value)


# -- bad files -----------------------------------------------------------------------------


def test_missing_file_is_config_error_and_file_not_found_error(tmp_path):
    missing = tmp_path / "missing.py"
    with pytest.raises(ConfigFileNotFoundError) as info:
        Config.fromfile(missing)
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, FileNotFoundError)
    assert str(missing) in str(info.value)


def test_directory_instead_of_file_is_an_error(tmp_path):
    (tmp_path / "d.py").mkdir()
    with pytest.raises(ConfigError, match="not a file"):
        Config.fromfile(tmp_path / "d.py")


def test_python_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.py", "a = 1\nb = 2\nc = dict(x=\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)
    assert isinstance(info.value.__cause__, SyntaxError)


def test_python_config_that_raises_names_file_line_and_error(tmp_path):
    path = write(tmp_path, "bad.py", "a = 1\nb = undefined_name + 1\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 2" in message
    assert "NameError" in message


@pytest.mark.parametrize("macro", ["{{_base_.train_pipeline}}", "{{ fileDirname }}"])
def test_mmengine_text_macros_are_refused_with_the_line(tmp_path, macro):
    path = write(tmp_path, "c.py", f"a = 1\nb = {macro}\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    assert "line 2" in str(info.value)
    assert macro in str(info.value)


def test_double_braces_that_are_not_macros_still_work(tmp_path):
    path = write(tmp_path, "c.py", "fmt = '{{x}}'.format()\n")
    assert Config.fromfile(path).fmt == "{x}"


def test_unknown_extension_names_it_and_the_supported_ones(tmp_path):
    path = write(tmp_path, "cfg.ini", "[a]\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert "'.ini'" in message
    for suffix in (".py", ".json", ".toml", ".yaml", ".yml"):
        assert suffix in message


def test_top_level_that_is_not_a_mapping_is_an_error(tmp_path):
    path = write(tmp_path, "list.json", "[1, 2]")
    with pytest.raises(ConfigError, match=r"list\.json.*mapping.*list"):
        Config.fromfile(path)


def test_config_from_a_non_mapping_is_an_error():
    with pytest.raises(ConfigError, match=r"expects a dict.*list"):
        Config([1, 2])


# -- custom_imports -----------------------------------------------------------------------


def test_custom_imports_are_imported(tmp_path, monkeypatch):
    write(tmp_path, "pkg_for_cfg_test/__init__.py", "LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pkg_for_cfg_test", raising=False)
    path = write(tmp_path, "c.py", "custom_imports = dict(imports=['pkg_for_cfg_test'])\n")
    Config.fromfile(path)
    assert sys.modules["pkg_for_cfg_test"].LOADED is True


def test_failed_custom_import_is_an_error_unless_allowed(tmp_path):
    strict = write(tmp_path, "a.py", "custom_imports = dict(imports=['no_such_module_xyz'])\n")
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        Config.fromfile(strict)
    assert Config.fromfile(strict, import_custom_modules=False).custom_imports.imports
    lenient = write(
        tmp_path,
        "b.py",
        "custom_imports = dict(imports='no_such_module_xyz', allow_failed_imports=True)\n",
    )
    with pytest.warns(UserWarning, match="no_such_module_xyz"):
        Config.fromfile(lenient)


# -- access ---------------------------------------------------------------------------------


def test_attribute_and_item_access_delegate_to_the_dict():
    cfg = Config(dict(model=dict(type="A"), lr=0.1))
    assert cfg.model.type == "A"
    assert cfg["model"]["type"] == "A"
    assert cfg.get("lr") == 0.1
    assert cfg.get("missing", 3) == 3
    assert "model" in cfg
    assert "nope" not in cfg
    assert list(cfg) == ["model", "lr"]
    assert len(cfg) == 2
    assert dict(cfg.items()) == {"model": {"type": "A"}, "lr": 0.1}


def test_setting_attributes_and_items_stores_configdicts():
    cfg = Config()
    cfg.optim = dict(type="SGD", extra=dict(m=0.9))
    cfg["sched"] = {"gamma": 0.1}
    assert type(cfg.optim.extra) is ConfigDict
    assert cfg.sched.gamma == 0.1
    del cfg.optim
    del cfg["sched"]
    assert len(cfg) == 0


def test_missing_attribute_raises_attributeerror_listing_keys():
    cfg = Config(dict(model=1))
    with pytest.raises(AttributeError, match=r"'optimizer'.*'model'"):
        _ = cfg.optimizer
    assert getattr(cfg, "optimizer", None) is None


def test_method_names_cannot_be_overwritten_by_attribute_but_work_as_keys():
    cfg = Config()
    with pytest.raises(AttributeError, match=r"cfg\['filename'\]"):
        cfg.filename = "x"
    cfg["filename"] = "x"
    assert cfg["filename"] == "x"
    assert cfg.filename is None


def test_equality_compares_the_settings():
    assert Config(dict(a=1)) == Config(dict(a=1), filename="x.py")
    assert Config(dict(a=1)) == {"a": 1}
    assert Config(dict(a=1)) != Config(dict(a=2))


# -- merge_from_dict ------------------------------------------------------------------------


def test_merge_from_dict_sets_dotted_keys_and_indexes_lists():
    cfg = Config(dict(model=dict(backbone=dict(depth=18)), layers=[dict(type="A"), 2]))
    cfg.merge_from_dict(
        {"model.backbone.depth": 50, "layers.0.type": "X", "layers.-1": 3, "lr": 0.1}
    )
    assert cfg.to_dict() == {
        "model": {"backbone": {"depth": 50}},
        "layers": [{"type": "X"}, 3],
        "lr": 0.1,
    }


def test_merge_from_dict_creates_missing_intermediate_dicts():
    cfg = Config()
    cfg.merge_from_dict({"optim.sgd.momentum": 0.9})
    assert cfg.optim.sgd.momentum == 0.9
    assert type(cfg.optim.sgd) is ConfigDict


def test_merge_from_dict_merges_dict_values_unless_delete():
    cfg = Config(dict(model=dict(type="A", depth=18), layers=[dict(type="A", k=3)]))
    cfg.merge_from_dict({"model": dict(depth=50), "layers.0": dict(k=5)})
    assert cfg.model == {"type": "A", "depth": 50}
    assert cfg.layers[0] == {"type": "A", "k": 5}
    cfg.merge_from_dict({"model": dict(_delete_=True, type="B")})
    assert cfg.model == {"type": "B"}


@pytest.mark.parametrize(
    ("key", "fragments"),
    [
        ("layers.5.type", ["'layers.5.type'", "index 5", "length 2"]),
        ("layers.-3", ["'layers.-3'", "index -3"]),
        ("layers.first", ["'layers.first'", "'first'", "integer"]),
        ("model.depth.x", ["'model.depth.x'", "'model.depth'", "int", "'x'"]),
        ("name.0", ["'name.0'", "str"]),
        ("shape.0", ["'shape.0'", "tuple"]),
        ("a..b", ["'a..b'", "empty"]),
        ("", ["''"]),
    ],
)
def test_merge_from_dict_bad_keys_name_the_key_and_component(key, fragments):
    cfg = Config(dict(layers=[1, 2], model=dict(depth=18), name="n", shape=(1, 2)))
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dict({key: 1})
    for fragment in fragments:
        assert fragment in str(info.value)


def test_merge_from_dict_is_all_or_nothing():
    cfg = Config(dict(a=1, layers=[1]))
    with pytest.raises(ConfigError):
        cfg.merge_from_dict({"a": 2, "new.key": 3, "layers.9": 0})
    assert cfg.to_dict() == {"a": 1, "layers": [1]}


# -- dump, pretty_text, repr ---------------------------------------------------------------


def test_dump_without_path_uses_the_format_of_the_source_file(tmp_path):
    cfg = Config.fromfile(write(tmp_path, "c.json", '{"a": {"b": 1}}'))
    assert cfg.dump().lstrip().startswith("{")
    assert Config(dict(a=1)).dump() == "a = 1\n"


@pytest.mark.parametrize("suffix", [".py", ".json", ".toml", ".yaml", ".yml"])
def test_dump_to_path_returns_the_path_and_reads_back_equal(tmp_path, suffix):
    cfg = Config(dict(model=dict(type="A", layers=[1, 2], opts=dict(k="v")), lr=0.5, on=True))
    written = cfg.dump(tmp_path / f"out{suffix}")
    assert written == tmp_path / f"out{suffix}"
    assert Config.fromfile(written) == cfg


def test_failed_dump_leaves_no_file_and_keeps_an_old_one(tmp_path):
    target = tmp_path / "out.toml"
    with pytest.raises(ConfigError):
        Config(dict(a=None)).dump(target)
    assert not target.exists()
    target.write_text("a = 1\n")
    with pytest.raises(ConfigError):
        Config(dict(a=None)).dump(target)
    assert target.read_text() == "a = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.toml"]


def test_pretty_text_is_python_that_evaluates_to_the_config():
    cfg = Config(
        dict(
            model=dict(type="ResNet", depth=50, stages=tuple(range(4)), extra={"a-b": 1}),
            pipeline=[dict(type=f"Step{i}", size=(224, 224), keep=True) for i in range(6)],
            ratio=float("inf"),
            empty=dict(),
            single=(1,),
        )
    )
    text = cfg.pretty_text
    namespace = {}
    exec(text, namespace)
    assert {k: namespace[k] for k in cfg} == cfg.to_dict()
    assert "model = dict(" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_pretty_text_never_raises_on_unwritable_values():
    obj = object()
    text = Config(dict(thing=obj)).pretty_text
    assert repr(obj) in text


def test_repr_shows_filename_and_pretty_text(tmp_path):
    cfg = Config.fromfile(write(tmp_path, "c.py", "a = dict(b=1)\n"))
    text = repr(cfg)
    assert str(tmp_path / "c.py") in text
    assert "a = dict(b=1)" in text


# -- copying and pickling -------------------------------------------------------------------


def test_deepcopy_is_independent_and_keeps_filename():
    cfg = Config(dict(a=dict(b=[1])), filename="/x/c.py")
    clone = copy.deepcopy(cfg)
    clone.a.b.append(2)
    assert cfg.a.b == [1]
    assert clone.filename == "/x/c.py"
    assert type(clone.a) is ConfigDict


def test_copy_is_shallow():
    cfg = Config(dict(a=dict(b=1), c=1))
    for clone in (copy.copy(cfg), cfg.copy()):
        assert isinstance(clone, Config)
        assert clone.a is cfg.a
        clone.c = 2
        assert cfg.c == 1


def test_pickle_round_trip(tmp_path):
    cfg = Config.fromfile(write(tmp_path, "c.py", "a = dict(b=[1, dict(c=2)])\nt = (1, 2)\n"))
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored == cfg
    assert restored.filename == cfg.filename
    assert type(restored.a.b[1]) is ConfigDict
