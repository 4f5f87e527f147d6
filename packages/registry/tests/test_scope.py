import asyncio
import threading
from collections.abc import Iterator

import pytest

from camshaft.registry import DefaultScope


@pytest.fixture(autouse=True)
def _no_scope_leaks() -> Iterator[None]:
    assert DefaultScope.get_current_instance() is None, "a previous test left a scope active"
    yield
    assert DefaultScope.get_current_instance() is None, "this test left a scope active"


def current_name() -> str | None:
    current = DefaultScope.get_current_instance()
    return None if current is None else current.scope_name


def test_no_scope_is_active_by_default() -> None:
    assert DefaultScope.get_current_instance() is None


def test_with_block_activates_and_restores() -> None:
    scope = DefaultScope("mmdet")
    with scope as entered:
        assert entered is scope
        assert DefaultScope.get_current_instance() is scope
        assert scope.scope_name == "mmdet"
    assert DefaultScope.get_current_instance() is None


def test_nested_blocks_restore_the_outer_scope() -> None:
    with DefaultScope("outer"):
        with DefaultScope("inner"):
            assert current_name() == "inner"
        assert current_name() == "outer"
    assert current_name() is None


def test_same_instance_can_be_reentered() -> None:
    outer = DefaultScope("a")
    with outer:
        with DefaultScope("b"):
            with outer:
                assert current_name() == "a"
            assert current_name() == "b"
        assert current_name() == "a"
    assert current_name() is None


def test_exception_inside_block_still_restores() -> None:
    with DefaultScope("outer"):
        with pytest.raises(RuntimeError, match="boom"), DefaultScope("inner"):
            raise RuntimeError("boom")
        assert current_name() == "outer"


def test_leaving_a_block_drops_scopes_activated_inside_it() -> None:
    with DefaultScope("outer"):
        DefaultScope.get_instance("leaked", scope_name="inner")
        assert current_name() == "inner"
    assert current_name() is None


def test_overwrite_default_scope_switches_and_restores() -> None:
    with DefaultScope("outer"):
        with DefaultScope.overwrite_default_scope("inner") as scope:
            assert scope is not None
            assert scope.scope_name == "inner"
            assert current_name() == "inner"
        assert current_name() == "outer"


def test_overwrite_default_scope_none_keeps_current() -> None:
    with DefaultScope("outer") as outer, DefaultScope.overwrite_default_scope(None) as scope:
        assert scope is outer
        assert current_name() == "outer"
    with DefaultScope.overwrite_default_scope(None) as scope:
        assert scope is None


def test_get_instance_activates_until_close() -> None:
    scope = DefaultScope.get_instance("exp1", scope_name="mmdet")
    try:
        assert DefaultScope.get_current_instance() is scope
        assert scope.instance_name == "exp1"
        assert DefaultScope.get_instance("exp1") is scope
        assert DefaultScope.get_instance("exp1", scope_name="mmdet") is scope
    finally:
        scope.close()
    assert DefaultScope.get_current_instance() is None
    scope.close()  # closing an inactive instance does nothing
    assert DefaultScope.get_current_instance() is None


def test_get_instance_with_other_scope_shadows_then_restores() -> None:
    first = DefaultScope.get_instance("exp", scope_name="a")
    second = DefaultScope.get_instance("exp", scope_name="b")
    assert second is not first
    assert current_name() == "b"
    second.close()
    assert DefaultScope.get_current_instance() is first
    first.close()


def test_get_instance_unknown_name_without_scope_name_raises() -> None:
    with pytest.raises(ValueError, match=r"'missing'.*scope_name="):
        DefaultScope.get_instance("missing")
    with DefaultScope("mmdet"), pytest.raises(ValueError, match="'other'"):
        DefaultScope.get_instance("other")


@pytest.mark.parametrize("bad", [None, 3, b"mmdet"])
def test_scope_name_of_wrong_type_is_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match=r"`scope_name` must be a str, got"):
        DefaultScope(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "mm.det"])
def test_scope_name_empty_or_dotted_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"`scope_name` must be a non-empty name without dots"):
        DefaultScope(bad)


def test_instance_name_of_wrong_type_is_rejected() -> None:
    with pytest.raises(TypeError, match="`name` must be a str or None"):
        DefaultScope("mmdet", name=3)  # type: ignore[arg-type]


def test_scope_entered_in_a_thread_stays_in_that_thread() -> None:
    seen: dict[str, str | None] = {}

    def work() -> None:
        with DefaultScope("thread"):
            seen["inside"] = current_name()
        seen["after"] = current_name()

    with DefaultScope("main"):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert current_name() == "main"
    assert seen["inside"] == "thread"
    assert seen["after"] != "thread"


def test_asyncio_tasks_each_see_their_own_scope() -> None:
    async def task(name: str, first: asyncio.Event, second: asyncio.Event) -> list[str | None]:
        with DefaultScope(name):
            seen = [current_name()]
            first.set()
            await second.wait()  # the other task enters its scope meanwhile
            seen.append(current_name())
        return seen

    async def main() -> list[list[str | None]]:
        a_ready, b_ready = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(task("a", a_ready, b_ready), task("b", b_ready, a_ready)))

    assert asyncio.run(main()) == [["a", "a"], ["b", "b"]]


def test_repr_shows_scope_and_instance_name() -> None:
    assert repr(DefaultScope("mmdet")) == "DefaultScope('mmdet')"
    assert repr(DefaultScope("mmdet", name="exp")) == "DefaultScope('mmdet', name='exp')"
