"""ConfigDict: attribute access, conversion of nested dicts, copying, merging."""

import copy
import json
import pickle
from collections import namedtuple

import pytest

from camshaft.registry import ConfigDict

Point = namedtuple("Point", "x y")


def test_attribute_and_item_access_reach_the_same_value():
    cfg = ConfigDict(model=dict(type="ResNet", depth=50))
    assert cfg.model.type == "ResNet"
    assert cfg["model"]["depth"] == 50
    assert cfg.model is cfg["model"]


def test_nested_dicts_become_configdicts_inside_lists_and_tuples():
    cfg = ConfigDict({"a": {"b": {"c": 1}}, "items": [{"x": 1}, ({"y": 2},)]})
    assert type(cfg.a) is ConfigDict
    assert type(cfg.a.b) is ConfigDict
    assert type(cfg["items"][0]) is ConfigDict
    assert type(cfg["items"][1]) is tuple
    assert cfg["items"][1][0].y == 2


def test_namedtuples_keep_their_type_and_convert_their_items():
    cfg = ConfigDict(p=Point({"a": 1}, 2))
    assert type(cfg.p) is Point
    assert cfg.p.x.a == 1


@pytest.mark.parametrize(
    "assign",
    [
        lambda cfg: setattr(cfg, "new", {"k": {"z": 1}}),
        lambda cfg: cfg.__setitem__("new", {"k": {"z": 1}}),
        lambda cfg: cfg.update(new={"k": {"z": 1}}),
        lambda cfg: cfg.update({"new": {"k": {"z": 1}}}),
        lambda cfg: cfg.setdefault("new", {"k": {"z": 1}}),
    ],
    ids=["setattr", "setitem", "update-kwargs", "update-mapping", "setdefault"],
)
def test_every_way_of_storing_converts_nested_dicts(assign):
    cfg = ConfigDict()
    assign(cfg)
    assert type(cfg.new) is ConfigDict
    assert type(cfg.new.k) is ConfigDict
    assert cfg.new.k.z == 1


def test_setdefault_returns_the_stored_configdict_not_the_argument():
    cfg = ConfigDict()
    plain = {"a": 1}
    stored = cfg.setdefault("x", plain)
    stored.b = 2
    assert cfg.x == {"a": 1, "b": 2}
    assert cfg.setdefault("x", {"other": 1}) is stored


def test_missing_attribute_is_attributeerror_naming_key_and_available_keys():
    cfg = ConfigDict(model=1, data=2)
    with pytest.raises(AttributeError) as info:
        _ = cfg.optimizer
    message = str(info.value)
    assert "'optimizer'" in message
    assert "'model'" in message
    assert "'data'" in message
    assert not isinstance(info.value, KeyError)


def test_hasattr_and_getattr_default_work():
    cfg = ConfigDict(a=1)
    assert hasattr(cfg, "a")
    assert not hasattr(cfg, "b")
    assert getattr(cfg, "b", "fallback") == "fallback"


def test_missing_item_is_still_keyerror():
    with pytest.raises(KeyError):
        _ = ConfigDict()["nope"]


def test_delattr_removes_the_key_and_missing_delattr_raises():
    cfg = ConfigDict(a=1, b=2)
    del cfg.a
    assert cfg == {"b": 2}
    with pytest.raises(AttributeError, match="'a'"):
        del cfg.a


def test_setting_a_method_name_as_attribute_is_refused_with_a_hint():
    cfg = ConfigDict()
    with pytest.raises(AttributeError, match=r"cfg\['update'\]"):
        cfg.update = 1
    cfg["update"] = 1  # item assignment still works
    assert cfg["update"] == 1
    assert callable(cfg.update)


def test_update_merges_nested_dicts_like_mmengine():
    cfg = ConfigDict(model=dict(type="A", backbone=dict(depth=18, frozen=True)))
    cfg.update(model=dict(backbone=dict(depth=50)))
    assert cfg.model == {"type": "A", "backbone": {"depth": 50, "frozen": True}}


def test_update_replaces_when_either_side_is_not_a_dict():
    cfg = ConfigDict(a=dict(x=1), b=[1, 2])
    cfg.update(a=3, b=dict(y=2))
    assert cfg == {"a": 3, "b": {"y": 2}}
    assert type(cfg.b) is ConfigDict


def test_to_dict_returns_plain_containers_all_the_way_down():
    cfg = ConfigDict(a=dict(b=[dict(c=1)], t=(dict(d=2),)))
    plain = cfg.to_dict()
    assert type(plain) is dict
    assert type(plain["a"]) is dict
    assert type(plain["a"]["b"][0]) is dict
    assert type(plain["a"]["t"][0]) is dict
    assert plain == {"a": {"b": [{"c": 1}], "t": ({"d": 2},)}}
    plain["a"]["b"].append(5)
    assert cfg.a.b == [{"c": 1}]


def test_copy_is_shallow_and_keeps_the_type():
    cfg = ConfigDict(a=dict(b=1), c=1)
    for clone in (cfg.copy(), copy.copy(cfg)):
        assert type(clone) is ConfigDict
        assert clone == cfg
        assert clone.a is cfg.a
        clone.c = 2
        assert cfg.c == 1


def test_deepcopy_copies_nested_values_and_keeps_types():
    cfg = ConfigDict(a=dict(b=[1, dict(c=2)]))
    clone = copy.deepcopy(cfg)
    assert clone == cfg
    assert type(clone.a.b[1]) is ConfigDict
    clone.a.b[1].c = 3
    assert cfg.a.b[1].c == 2


def test_deepcopy_preserves_shared_and_self_references():
    shared = ConfigDict(x=1)
    cfg = ConfigDict(p=shared, q=shared)
    cfg["me"] = cfg
    clone = copy.deepcopy(cfg)
    assert clone.p is clone.q
    assert clone.me is clone


def test_pickle_round_trip_keeps_types_and_values():
    cfg = ConfigDict(a=dict(b=[dict(c=1)]), n=None)
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored == cfg
    assert type(restored.a) is ConfigDict
    assert type(restored.a.b[0]) is ConfigDict


def test_union_operators_return_configdicts():
    cfg = ConfigDict(a=1)
    assert type(cfg | {"b": {}}) is ConfigDict
    assert type((cfg | {"b": {}}).b) is ConfigDict
    assert type({"b": {}} | cfg) is ConfigDict
    cfg |= {"c": {"d": 1}}
    assert type(cfg.c) is ConfigDict


def test_it_is_a_real_dict():
    cfg = ConfigDict(a=dict(b=1))
    assert isinstance(cfg, dict)
    assert cfg == {"a": {"b": 1}}
    assert json.loads(json.dumps(cfg)) == {"a": {"b": 1}}
    assert dict(**cfg) == {"a": {"b": 1}}


def test_dir_lists_keys_for_completion():
    cfg = ConfigDict(model=1, **{"not an identifier": 2})
    names = dir(cfg)
    assert "model" in names
    assert "update" in names
    assert "not an identifier" not in names
