import functools
import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from camshaft.registry import DefaultScope, Registry, RegistryError


class Foo:
    pass


class OtherFoo:
    pass


def make_foo() -> Foo:
    return Foo()


def qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


@pytest.fixture(autouse=True)
def _no_scope_leaks() -> Iterator[None]:
    assert DefaultScope.get_current_instance() is None
    yield
    assert DefaultScope.get_current_instance() is None


# --- registration --------------------------------------------------------------------


def test_decorator_registers_under_class_name_and_returns_class() -> None:
    reg = Registry("thing", scope="t")

    @reg.register_module()
    class Widget:
        pass

    assert reg.get("Widget") is Widget
    assert isinstance(Widget(), Widget)  # the decorator returned the class itself


def test_decorator_with_name_and_aliases() -> None:
    reg = Registry("thing", scope="t")

    @reg.register_module(name="Renamed")
    class A:
        pass

    @reg.register_module(name=["B", "BAlias"])
    class B:
        pass

    assert reg.get("Renamed") is A
    assert reg.get("A") is None
    assert reg.get("B") is B
    assert reg.get("BAlias") is B
    assert len(reg) == 3


def test_call_form_registers_and_returns_module() -> None:
    reg = Registry("thing", scope="t")
    assert reg.register_module(module=Foo) is Foo
    assert reg.register_module("Made", False, make_foo) is make_foo
    assert reg.register_module(name=("X", "Y"), module=OtherFoo) is OtherFoo
    assert reg.get("Foo") is Foo
    assert reg.get("Made") is make_foo
    assert reg.get("X") is OtherFoo
    assert reg.get("Y") is OtherFoo


def test_functions_and_callables_can_be_registered() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(module=make_foo)
    partial = functools.partial(make_foo)
    reg.register_module(name="PartialFoo", module=partial)
    assert reg.get("make_foo") is make_foo
    assert reg.get("PartialFoo") is partial


def test_duplicate_name_raises_and_names_both_objects() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(name="Foo", module=Foo)
    with pytest.raises(RegistryError) as info:
        reg.register_module(name="Foo", module=OtherFoo)
    message = str(info.value)
    assert "'Foo'" in message
    assert "'thing'" in message
    assert qualname(Foo) in message
    assert qualname(OtherFoo) in message
    assert "force=True" in message
    assert reg.get("Foo") is Foo
    assert isinstance(info.value, KeyError)


def test_duplicate_via_decorator_raises() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(module=Foo)
    with pytest.raises(RegistryError, match="already registered"):

        @reg.register_module(name="Foo")
        class Another:
            pass


def test_duplicate_alias_registers_nothing() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(name="Taken", module=Foo)
    with pytest.raises(RegistryError, match="'Taken'"):
        reg.register_module(name=["Fresh", "Taken"], module=OtherFoo)
    assert reg.get("Fresh") is None
    assert reg.get("Taken") is Foo


def test_force_replaces() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(name="Foo", module=Foo)
    reg.register_module(name="Foo", module=OtherFoo, force=True)
    assert reg.get("Foo") is OtherFoo
    assert len(reg) == 1


def test_registering_the_same_object_again_is_a_no_op() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(module=Foo)
    reg.register_module(module=Foo)
    assert reg.get("Foo") is Foo
    assert len(reg) == 1


@pytest.mark.parametrize("bad", [3, ["A", 3], [], {"A": 1}])
def test_name_of_wrong_type_is_rejected(bad: object) -> None:
    reg = Registry("thing", scope="t")
    with pytest.raises(TypeError, match=r"`name` must"):
        reg.register_module(name=bad, module=Foo)  # type: ignore[call-overload]
    assert len(reg) == 0


@pytest.mark.parametrize("bad", ["", "a.B", ["A", ""]])
def test_name_empty_or_dotted_is_rejected(bad: str | list[str]) -> None:
    reg = Registry("thing", scope="t")
    with pytest.raises(ValueError, match=r"`name` must be non-empty and contain no dot"):
        reg.register_module(name=bad, module=Foo)


def test_module_that_is_not_callable_is_rejected() -> None:
    reg = Registry("thing", scope="t")
    with pytest.raises(TypeError, match=r"`module` must be a class or a callable, got int: 3"):
        reg.register_module(name="Three", module=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"`module` must be a class or a callable"):
        reg.register_module(name="Str")("not callable")  # type: ignore[type-var]
    assert len(reg) == 0


def test_force_of_wrong_type_is_rejected() -> None:
    reg = Registry("thing", scope="t")
    with pytest.raises(TypeError, match=r"`force` must be a bool, got str"):
        reg.register_module(force="yes", module=Foo)  # type: ignore[call-overload]


def test_nameless_callable_needs_explicit_name() -> None:
    reg = Registry("thing", scope="t")
    with pytest.raises(TypeError, match="pass name="):
        reg.register_module(module=functools.partial(make_foo))


# --- construction --------------------------------------------------------------------


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="`name` must be a str"):
        Registry(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`name` must be a non-empty str"):
        Registry("")
    with pytest.raises(TypeError, match="`parent` must be a Registry or None, got dict"):
        Registry("thing", parent={}, scope="t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`build_func` must be callable"):
        Registry("thing", build_func=3, scope="t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`scope` must be a non-empty name without dots"):
        Registry("thing", scope="a.b")
    with pytest.raises(TypeError, match=r"locations=\['pkg.mod'\]"):
        Registry("thing", scope="t", locations="pkg.mod")
    with pytest.raises(TypeError, match="`locations` must hold module paths"):
        Registry("thing", scope="t", locations=["ok", 3])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("module", "scope"),
    [
        ("camshaft.model.registry", "model"),
        ("camshaft.runner", "runner"),
        ("camshaft", "camshaft"),
        ("mmdet.registry", "mmdet"),
        ("__main__", "__main__"),
    ],
)
def test_scope_is_inferred_from_the_creating_module(module: str, scope: str) -> None:
    namespace: dict[str, Any] = {"__name__": module, "Registry": Registry}
    exec("reg = Registry('thing')\ninferred = Registry.infer_scope()", namespace)
    assert namespace["reg"].scope == scope
    assert namespace["inferred"] == scope


def test_scope_inference_skips_subclass_constructors() -> None:
    namespace: dict[str, Any] = {"__name__": "mmdet.registry", "Registry": Registry}
    exec(
        "class MyRegistry(Registry):\n"
        "    def __init__(self, name):\n"
        "        super().__init__(name)\n",
        namespace,
    )
    user: dict[str, Any] = {"__name__": "mmseg.models", "MyRegistry": namespace["MyRegistry"]}
    exec("reg = MyRegistry('thing')", user)
    assert user["reg"].scope == "mmseg"


def test_child_registers_in_parent_children() -> None:
    root = Registry("thing", scope="root")
    child = Registry("thing", parent=root, scope="child")
    assert root.children["child"] is child
    assert child.parent is root
    assert child.root is root
    assert root.parent is None
    with pytest.raises(TypeError):
        root.children["x"] = child  # type: ignore[index]


def test_duplicate_child_scope_is_an_error_naming_it() -> None:
    root = Registry("thing", scope="root")
    first = Registry("thing", parent=root, scope="mmdet")
    with pytest.raises(RegistryError, match=r"scope 'mmdet' .*already used"):
        Registry("thing", parent=root, scope="mmdet")
    with pytest.raises(RegistryError, match="'root'"):  # unique in the whole tree
        Registry("thing", parent=first, scope="root")
    assert root.children["mmdet"] is first


def test_build_func_is_inherited_from_parent_and_gets_registry() -> None:
    calls: list[tuple[Any, ...]] = []

    def build(cfg: Any, *args: Any, registry: Registry, **kwargs: Any) -> str:
        calls.append((cfg, args, registry, kwargs))
        return "built"

    root = Registry("thing", build_func=build, scope="root")
    child = Registry("thing", parent=root, scope="child")
    assert child.build_func is build
    assert child.build({"type": "X"}, 1, flag=True) == "built"
    assert calls == [({"type": "X"}, (1,), child, {"flag": True})]


def test_default_build_func_builds() -> None:
    reg = Registry("thing", scope="t")
    reg.register_module(module=Foo)
    assert isinstance(reg.build({"type": "Foo"}), Foo)


# --- lookup --------------------------------------------------------------------------


@pytest.fixture
def tree() -> dict[str, Registry]:
    root = Registry("thing", scope="root")
    det = Registry("thing", parent=root, scope="mmdet")
    seg = Registry("thing", parent=root, scope="mmseg")
    det3d = Registry("thing", parent=det, scope="mmdet3d")
    for reg in (root, det, seg, det3d):
        reg.register_module(name="Net", module=type(f"{reg.scope}Net", (), {}))
    root.register_module(name="RootOnly", module=type("RootOnly", (), {}))
    det.register_module(name="DetOnly", module=type("DetOnly", (), {}))
    seg.register_module(name="SegOnly", module=type("SegOnly", (), {}))
    return {"root": root, "mmdet": det, "mmseg": seg, "mmdet3d": det3d}


def test_get_returns_none_on_miss(tree: dict[str, Registry]) -> None:
    assert tree["root"].get("Missing") is None
    assert tree["root"].get("") is None
    assert tree["root"].get("mmdet.") is None


def test_get_rejects_non_string(tree: dict[str, Registry]) -> None:
    with pytest.raises(TypeError, match="`key` must be a str, got type"):
        tree["root"].get(Foo)  # type: ignore[arg-type]


def test_child_prefers_own_names_and_falls_back_to_parents(tree: dict[str, Registry]) -> None:
    det, det3d = tree["mmdet"], tree["mmdet3d"]
    assert det.get("Net").__name__ == "mmdetNet"
    assert det3d.get("Net").__name__ == "mmdet3dNet"
    assert det3d.get("DetOnly") is det.get("DetOnly")
    assert det3d.get("RootOnly") is tree["root"].get("RootOnly")
    assert tree["root"].get("DetOnly") is None  # parents never look down without a prefix
    assert det.get("SegOnly") is None  # nor sideways


def test_scope_prefix_selects_a_registry_anywhere_in_the_tree(tree: dict[str, Registry]) -> None:
    root, det, seg = tree["root"], tree["mmdet"], tree["mmseg"]
    assert root.get("mmdet.DetOnly") is det.get("DetOnly")
    assert root.get("mmdet3d.Net").__name__ == "mmdet3dNet"
    assert det.get("mmseg.SegOnly") is seg.get("SegOnly")  # sibling
    assert tree["mmdet3d"].get("root.Net").__name__ == "rootNet"  # ancestor
    assert seg.get("mmseg.Net").__name__ == "mmsegNet"  # its own scope
    assert seg.get("mmdet.RootOnly") is root.get("RootOnly")  # then that scope's parents
    assert root.get("mmcls.Net") is None  # unknown scope


def test_default_scope_is_searched_first(tree: dict[str, Registry]) -> None:
    root = tree["root"]
    assert root.get("Net").__name__ == "rootNet"
    with DefaultScope("mmdet"):
        assert root.get("Net").__name__ == "mmdetNet"
        assert root.get("DetOnly") is tree["mmdet"].get("DetOnly")
        assert root.get("RootOnly") is not None  # falls back to the own chain
        assert tree["mmseg"].get("SegOnly") is not None
        assert tree["mmseg"].get("Net").__name__ == "mmdetNet"
        assert root.get("mmseg.Net").__name__ == "mmsegNet"  # a prefix wins
        with DefaultScope("mmseg"):
            assert root.get("Net").__name__ == "mmsegNet"
        assert root.get("Net").__name__ == "mmdetNet"
    assert root.get("Net").__name__ == "rootNet"


def test_default_scope_parents_come_before_the_own_chain(tree: dict[str, Registry]) -> None:
    seg = tree["mmseg"]
    assert seg.get("DetOnly") is None
    with DefaultScope("mmdet3d"):  # searched: mmdet3d, mmdet, root, then mmseg
        assert seg.get("DetOnly") is tree["mmdet"].get("DetOnly")
        assert seg.get("SegOnly") is not None
        assert seg.get("Net").__name__ == "mmdet3dNet"


def test_default_scope_outside_the_tree_is_ignored(tree: dict[str, Registry]) -> None:
    with DefaultScope("mmcls"):
        assert tree["root"].get("Net").__name__ == "rootNet"
        assert tree["mmdet"].get("Net").__name__ == "mmdetNet"


def test_contains_and_len(tree: dict[str, Registry]) -> None:
    root, det = tree["root"], tree["mmdet"]
    assert "Net" in root
    assert "RootOnly" in det  # through the parent, like get()
    assert "mmdet.DetOnly" in root
    assert "DetOnly" not in root
    assert 3 not in root
    assert len(root) == 2
    assert len(det) == 2


def test_module_dict_is_a_read_only_live_view() -> None:
    reg = Registry("thing", scope="t")
    view = reg.module_dict
    reg.register_module(module=Foo)
    assert dict(view) == {"Foo": Foo}
    with pytest.raises(TypeError):
        view["Bar"] = OtherFoo  # type: ignore[index]


def test_repr_shows_name_scope_and_registered_objects() -> None:
    root = Registry("thing", scope="root")
    reg = Registry("thing", parent=root, scope="mmdet")
    assert repr(reg).startswith("Registry(name='thing', scope='mmdet'")
    assert "0 registered" in repr(reg)
    reg.register_module(name=["Foo", "FooAlias"], module=Foo)
    text = repr(reg)
    assert "'root'" in text
    assert "2 registered" in text
    assert f"Foo      -> {qualname(Foo)}" in text
    assert f"FooAlias -> {qualname(Foo)}" in text


def test_switch_scope_and_registry(tree: dict[str, Registry]) -> None:
    root = tree["root"]
    with root.switch_scope_and_registry("mmdet") as registry:
        assert registry is tree["mmdet"]
        assert DefaultScope.get_current_instance() is not None
        assert root.get("Net").__name__ == "mmdetNet"
    assert DefaultScope.get_current_instance() is None
    with root.switch_scope_and_registry(None) as registry:
        assert registry is root
    with root.switch_scope_and_registry("mmcls") as registry:
        assert registry is root


def test_split_scope_key() -> None:
    assert Registry.split_scope_key("mmdet.ResNet") == ("mmdet", "ResNet")
    assert Registry.split_scope_key("ResNet") == (None, "ResNet")


# --- lazy locations ------------------------------------------------------------------


@pytest.fixture
def write_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write modules into tmp_path (on sys.path); they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str, module: str | None = None) -> str:
        module = module or unique_module_name()
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        written.append(module)
        return module

    yield write
    for module in written:
        sys.modules.pop(module, None)


def unique_module_name() -> str:
    return f"camshaft_loc_{uuid.uuid4().hex}"


def test_locations_are_imported_on_first_miss(write_modules: Callable[..., str]) -> None:
    impl = unique_module_name()
    registry_module = write_modules(
        f"""
        from camshaft.registry import Registry
        THINGS = Registry("thing", scope="lazy", locations=["{impl}"])
        THINGS.register_module(name="Eager", module=dict)
        """
    )
    write_modules(
        f"""
        from {registry_module} import THINGS

        @THINGS.register_module()
        class Lazy:
            pass
        """,
        impl,
    )
    things = importlib.import_module(registry_module).THINGS
    assert things.get("Eager") is dict
    assert impl not in sys.modules  # a hit imports nothing
    assert len(things) == 1
    lazy = things.get("Lazy")
    assert impl in sys.modules
    assert lazy is not None
    assert lazy.__name__ == "Lazy"
    assert type(things.build({"type": "Lazy"})) is lazy
    del sys.modules[impl]
    assert things.get("StillMissing") is None
    assert impl not in sys.modules  # imported once per registry, not once per miss


def test_child_locations_are_imported_when_lookup_goes_through_it(
    write_modules: Callable[..., str],
) -> None:
    root = Registry("thing", scope="root")
    module = write_modules("VALUE = 1\n")
    child = Registry("thing", parent=root, scope="child", locations=[module])
    assert root.get("Missing") is None
    assert module not in sys.modules  # root's lookup never touches its children
    assert child.get("Missing") is None
    assert module in sys.modules


def test_import_from_location_is_explicit_and_idempotent(
    write_modules: Callable[..., str],
) -> None:
    module = write_modules("VALUE = 1\n")
    reg = Registry("thing", scope="t", locations=[module])
    reg.import_from_location()
    assert module in sys.modules
    del sys.modules[module]
    reg.import_from_location()
    assert module not in sys.modules


def test_unimportable_location_raises_with_cause() -> None:
    reg = Registry("thing", scope="t", locations=["camshaft_no_such_module_xyz"])
    with pytest.raises(RegistryError, match="camshaft_no_such_module_xyz") as info:
        reg.get("Anything")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(RegistryError):  # retried on the next lookup, not silently skipped
        reg.get("Anything")
