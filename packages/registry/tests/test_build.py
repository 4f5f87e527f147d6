import copy
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from camshaft.registry import BuildError, DefaultScope, Registry, RegistryError, build_from_cfg


class Recorder:
    """Keeps whatever it was built with."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class Strict:
    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size = size


def make_pair(a: int, b: int = 0) -> tuple[int, int]:
    return (a, b)


class FrozenCfg(Mapping[str, Any]):
    """A Mapping that is not a dict, like a read-only config view."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class DictSubclass(dict[str, Any]):
    pass


@pytest.fixture
def registry() -> Registry:
    reg = Registry("widget", scope="shop")
    reg.register_module(module=Recorder)
    reg.register_module(module=Strict)
    reg.register_module(module=make_pair)
    return reg


def test_builds_registered_class_with_the_other_keys(registry: Registry) -> None:
    built = build_from_cfg({"type": "Recorder", "a": 1, "b": "x"}, registry)
    assert isinstance(built, Recorder)
    assert built.kwargs == {"a": 1, "b": "x"}


def test_builds_registered_function(registry: Registry) -> None:
    assert build_from_cfg({"type": "make_pair", "a": 2, "b": 3}, registry) == (2, 3)


def test_type_may_be_the_class_or_function_itself(registry: Registry) -> None:
    class Unregistered:
        def __init__(self, x: int) -> None:
            self.x = x

    assert build_from_cfg({"type": Unregistered, "x": 5}, registry).x == 5
    assert build_from_cfg({"type": make_pair, "a": 1}, registry) == (1, 0)


def test_cfg_is_never_mutated_and_can_be_built_twice(registry: Registry) -> None:
    nested = {"inner": {"type": "Strict", "size": 1}, "items": [1, {"k": "v"}]}
    cfg = {"type": "Recorder", "nested": nested, "flag": True}
    before = copy.deepcopy(cfg)
    first = build_from_cfg(cfg, registry, default_args={"extra": 1})
    assert cfg == before
    assert first.kwargs["nested"] is nested  # nested values pass through as they are
    second = build_from_cfg(cfg, registry)
    assert cfg == before
    assert second.kwargs == {"nested": before["nested"], "flag": True}


def test_default_args_fill_only_missing_keys(registry: Registry) -> None:
    defaults = {"a": "default", "b": "default"}
    built = build_from_cfg({"type": "Recorder", "a": "cfg"}, registry, default_args=defaults)
    assert built.kwargs == {"a": "cfg", "b": "default"}
    assert defaults == {"a": "default", "b": "default"}


def test_type_may_come_from_default_args(registry: Registry) -> None:
    built = build_from_cfg({"size": 3}, registry, default_args={"type": "Strict"})
    assert built.size == 3
    overridden = build_from_cfg(
        {"type": "Recorder"}, registry, default_args={"type": "Strict", "size": 1}
    )
    assert isinstance(overridden, Recorder)  # the cfg's type wins


@pytest.mark.parametrize("factory", [OrderedDict, FrozenCfg, DictSubclass])
def test_any_mapping_is_accepted(registry: Registry, factory: Any) -> None:
    cfg = factory({"type": "Strict", "size": 4})
    assert build_from_cfg(cfg, registry).size == 4
    assert dict(cfg) == {"type": "Strict", "size": 4}


def test_registry_build_passes_default_args(registry: Registry) -> None:
    built = registry.build({"type": "Recorder"}, default_args={"a": 1})
    assert built.kwargs == {"a": 1}


def test_scoped_type_and_default_scope() -> None:
    root = Registry("widget", scope="root")
    child = Registry("widget", parent=root, scope="mmdet")
    root.register_module(name="Thing", module=Recorder)
    child.register_module(name="Thing", module=Strict)
    assert isinstance(root.build({"type": "Thing"}), Recorder)
    assert isinstance(root.build({"type": "mmdet.Thing", "size": 1}), Strict)
    with DefaultScope("mmdet"):
        assert isinstance(root.build({"type": "Thing", "size": 1}), Strict)


@pytest.mark.parametrize("bad", [["type", "Strict"], "Strict", None, 3])
def test_cfg_that_is_not_a_mapping_is_rejected(registry: Registry, bad: Any) -> None:
    with pytest.raises(BuildError, match=rf"`cfg` must be a mapping .*got {type(bad).__name__}"):
        build_from_cfg(bad, registry)


def test_default_args_that_is_not_a_mapping_is_rejected(registry: Registry) -> None:
    with pytest.raises(BuildError, match=r"`default_args` must be a mapping or None, got list"):
        build_from_cfg({"type": "Recorder"}, registry, default_args=[("a", 1)])  # type: ignore[arg-type]


def test_registry_that_is_not_a_registry_is_rejected() -> None:
    with pytest.raises(BuildError, match=r"`registry` must be a Registry, got dict"):
        build_from_cfg({"type": "Recorder"}, {})  # type: ignore[arg-type]


def test_missing_type_shows_the_cfg(registry: Registry) -> None:
    with pytest.raises(BuildError, match="no 'type' key") as info:
        build_from_cfg({"size": 3, "name": "probe"}, registry)
    assert "{'size': 3, 'name': 'probe'}" in str(info.value)


def test_type_of_wrong_kind_is_rejected(registry: Registry) -> None:
    with pytest.raises(BuildError, match=r"'type' must be a registered name .*got int: 3"):
        build_from_cfg({"type": 3}, registry)


def test_non_string_keys_are_rejected(registry: Registry) -> None:
    with pytest.raises(BuildError, match=r"cfg keys must be str .*\[1\]"):
        build_from_cfg({"type": "Recorder", 1: "x"}, registry)  # type: ignore[dict-item]


def test_unregistered_type_lists_closest_names_and_registry(registry: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        build_from_cfg({"type": "Strct"}, registry)
    message = str(info.value)
    assert "'Strct' is not registered in registry 'widget'" in message
    assert "scopes searched, in order: 'shop'" in message
    assert "Closest registered names: 'Strict'" in message
    assert isinstance(info.value, KeyError)


def test_closest_names_fall_back_to_case_insensitive(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="Closest registered names: 'Recorder'"):
        build_from_cfg({"type": "RECORDR"}, registry)


def test_closest_names_are_at_most_five_and_include_parents() -> None:
    root = Registry("widget", scope="root")
    child = Registry("widget", parent=root, scope="child")
    for index in range(4):
        root.register_module(name=f"Block{index}", module=Recorder)
        child.register_module(name=f"Block{index + 4}", module=Recorder)
    with pytest.raises(RegistryError) as info:
        child.build({"type": "Block"})
    message = str(info.value)
    assert "scopes searched, in order: 'child', 'root'" in message
    suggestions = message.split("Closest registered names: ")[1].split(".")[0].split(", ")
    assert len(suggestions) == 5
    assert all(name.strip("'").startswith("Block") for name in suggestions)
    assert any(name in message for name in ("'Block0'", "'Block1'", "'Block2'", "'Block3'"))


def test_unregistered_type_with_nothing_close(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="No registered name is close to it"):
        build_from_cfg({"type": "Zzzzzzzzzzz"}, registry)
    empty = Registry("widget", scope="empty")
    with pytest.raises(RegistryError, match="Nothing is registered"):
        empty.build({"type": "Anything"})


def test_unknown_scope_prefix_names_the_scopes_in_the_tree() -> None:
    root = Registry("widget", scope="root")
    Registry("widget", parent=root, scope="mmdet")
    with pytest.raises(RegistryError) as info:
        root.build({"type": "mmdett.Thing"})
    message = str(info.value)
    assert "no registry with scope 'mmdett'" in message
    assert "'mmdet', 'root'" in message
    assert "Did you mean 'mmdet'" in message


def test_default_scope_without_registry_is_mentioned(registry: Registry) -> None:
    with DefaultScope("mmcls"), pytest.raises(RegistryError, match="default scope 'mmcls'"):
        registry.build({"type": "Missing"})


def test_constructor_error_is_chained_and_names_class_and_cfg(registry: Registry) -> None:
    with pytest.raises(BuildError) as info:
        build_from_cfg({"type": "Strict", "size": -1}, registry)
    message = str(info.value)
    assert f"{Strict.__module__}.Strict" in message
    assert "ValueError: size must be >= 0, got -1" in message
    assert "{'type': 'Strict', 'size': -1}" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_bad_keyword_is_a_build_error_and_still_a_type_error(registry: Registry) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'sise'") as info:
        build_from_cfg({"type": "Strict", "sise": 1}, registry)
    assert isinstance(info.value, BuildError)
    assert isinstance(info.value.__cause__, TypeError)


def test_long_cfg_is_shortened_in_messages(registry: Registry) -> None:
    with pytest.raises(BuildError) as info:
        build_from_cfg({"payload": "x" * 10_000}, registry)
    assert len(str(info.value)) < 1_000
    assert "..." in str(info.value)
