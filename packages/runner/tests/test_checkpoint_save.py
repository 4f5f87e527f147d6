"""save_checkpoint, the last_checkpoint pointer, pruning, and SIGKILL during a save."""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from camshaft.init import CheckpointError, read_checkpoint
from camshaft.runner.checkpoint import (
    LAST_CHECKPOINT,
    CheckpointSaveError,
    check_plain_checkpoint,
    find_latest_checkpoint,
    prune_checkpoints,
    read_last_checkpoint,
    save_checkpoint,
    write_last_checkpoint,
)
from camshaft.runner.checkpoint._atomic import stage_write


def _temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _checkpoint(epoch: int = 1) -> dict[str, object]:
    torch.manual_seed(epoch)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return {
        "meta": {"epoch": epoch, "iter": 10 * epoch, "seed": None, "shape": torch.Size([2])},
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "message_hub": {"log_scalars": {"loss": [0.5, 0.25]}, "flags": (True, b"x")},
    }


# --- save_checkpoint: good input -------------------------------------------------------


def test_saved_checkpoint_reads_back_with_weights_only(tmp_path: Path) -> None:
    ckpt = _checkpoint()
    path = save_checkpoint(ckpt, tmp_path / "sub" / "epoch_1.pth")
    assert path == tmp_path / "sub" / "epoch_1.pth"
    loaded = read_checkpoint(path)
    assert loaded["meta"] == ckpt["meta"]
    assert isinstance(loaded["state_dict"], OrderedDict)
    for key, value in ckpt["state_dict"].items():  # type: ignore[attr-defined]
        assert torch.equal(loaded["state_dict"][key], value)
    assert loaded["optimizer"]["param_groups"] == ckpt["optimizer"]["param_groups"]  # type: ignore[index]
    assert loaded["message_hub"] == ckpt["message_hub"]
    assert _temp_files(path.parent) == []


def test_overwrite_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "epoch_1.pth"
    save_checkpoint({"meta": {"epoch": 1}}, path)
    save_checkpoint({"meta": {"epoch": 2}}, str(path))
    assert read_checkpoint(path)["meta"]["epoch"] == 2
    assert _temp_files(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_saved_file_gets_default_permissions_not_private_temp_ones(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = save_checkpoint({"a": 1}, tmp_path / "epoch_1.pth")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_stale_temp_files_of_a_killed_save_are_removed_on_the_next_save(tmp_path: Path) -> None:
    stale = tmp_path / ".epoch_2.pth.0123456789abcdef.tmp"
    stale.write_bytes(b"partial")
    other = tmp_path / ".unrelated.tmp"
    other.write_bytes(b"keep me")
    save_checkpoint({"a": 1}, tmp_path / "epoch_2.pth")
    assert not stale.exists()
    assert other.exists()


# --- save_checkpoint: bad input ----------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "where", "type_name"),
    [
        (
            {"meta": {"dataset": ["a", "b", object()]}},
            "checkpoint['meta']['dataset'][2]",
            "object",
        ),
        ({"meta": {"arr": np.zeros(3)}}, "checkpoint['meta']['arr']", "numpy.ndarray"),
        ({"meta": {"c": Color.RED}}, "checkpoint['meta']['c']", "Color"),
        ({"x": [(1, {1, 2})]}, "checkpoint['x'][0][1]", "set"),
        ({"f": lambda: 0}, "checkpoint['f']", "function"),
    ],
)
def test_non_plain_value_is_refused_naming_its_path_and_nothing_is_written(
    tmp_path: Path, value: dict[str, object], where: str, type_name: str
) -> None:
    path = tmp_path / "epoch_1.pth"
    with pytest.raises(TypeError, match="weights_only") as info:
        save_checkpoint(value, path)
    assert where in str(info.value)
    assert type_name in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_non_plain_dict_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"checkpoint\['meta'\] has a key of type object"):
        save_checkpoint({"meta": {object(): 1}}, tmp_path / "a.pth")


def test_a_checkpoint_that_contains_itself_is_refused() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match=r"checkpoint\['self'\] contains itself"):
        check_plain_checkpoint(loop)


@pytest.mark.parametrize("bad", [[1, 2], "ckpt", None])
def test_checkpoint_that_is_not_a_mapping_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(TypeError, match="`checkpoint` must be a mapping"):
        save_checkpoint(bad, tmp_path / "a.pth")  # type: ignore[arg-type]


def test_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`path` must name a file"):
        save_checkpoint({"a": 1}, tmp_path)


def test_failure_mid_write_keeps_the_previous_file_and_removes_the_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint({"meta": {"epoch": 1}}, tmp_path / "epoch_1.pth")

    def broken_save(obj: object, file: object) -> None:
        file.write(b"PK\x03\x04half a checkpoint")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointSaveError, match="No space left on device") as info:
        save_checkpoint({"meta": {"epoch": 2}}, path)
    assert isinstance(info.value, CheckpointError)
    assert isinstance(info.value, OSError)
    monkeypatch.undo()
    assert read_checkpoint(path)["meta"]["epoch"] == 1
    assert _temp_files(tmp_path) == []


def test_a_staged_write_is_in_place_only_after_commit(tmp_path: Path) -> None:
    target = tmp_path / "epoch_1.pth"
    target.write_bytes(b"previous")
    staged = stage_write(target, lambda file: file.write(b"new"))
    assert target.read_bytes() == b"previous"
    assert len(_temp_files(tmp_path)) == 1
    staged.commit()
    assert target.read_bytes() == b"new"
    assert _temp_files(tmp_path) == []


def test_a_discarded_staged_write_leaves_the_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "epoch_1.pth"
    target.write_bytes(b"previous")
    stage_write(target, lambda file: file.write(b"new")).discard()
    assert target.read_bytes() == b"previous"
    assert _temp_files(tmp_path) == []


def test_a_second_staging_of_a_name_keeps_the_first_temp_awaiting_commit(tmp_path: Path) -> None:
    """A staged temp file is not stale: another write of the name must not delete it."""
    target = tmp_path / "latest.pth"
    first = stage_write(target, lambda file: file.write(b"first"))
    second = stage_write(target, lambda file: file.write(b"second"))
    assert len(_temp_files(tmp_path)) == 2
    first.commit()
    assert target.read_bytes() == b"first"
    second.commit()
    assert target.read_bytes() == b"second"
    assert _temp_files(tmp_path) == []


def test_a_failing_commit_removes_the_temp_and_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "epoch_1.pth"
    target.write_bytes(b"previous")
    staged = stage_write(target, lambda file: file.write(b"new"))

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(CheckpointSaveError, match="No space left on device"):
        staged.commit()
    monkeypatch.undo()
    assert target.read_bytes() == b"previous"
    assert _temp_files(tmp_path) == []


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory path no file can be created in, as root or not."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    probe = locked / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return locked
    probe.unlink()  # root ignores permission bits: go under a regular file instead
    regular = tmp_path / "file.txt"
    regular.write_text("not a directory")
    return regular / "sub"


def test_unwritable_work_dir_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    directory = _unwritable_dir(tmp_path)
    try:
        with pytest.raises(CheckpointSaveError) as info:
            save_checkpoint({"a": 1}, directory / "epoch_1.pth")
        assert str(directory) in str(info.value)
        assert "write" in str(info.value)
        with pytest.raises(CheckpointSaveError, match=str(directory)):
            write_last_checkpoint(directory, save_checkpoint({"a": 1}, tmp_path / "ok.pth"))
    finally:
        (tmp_path / "locked").chmod(0o700)


# --- the last_checkpoint pointer ----------------------------------------------------------


def test_pointer_holds_the_relative_name_and_is_found(tmp_path: Path) -> None:
    path = save_checkpoint({"a": 1}, tmp_path / "epoch_1.pth")
    pointer = write_last_checkpoint(tmp_path, path)
    assert pointer == tmp_path / LAST_CHECKPOINT
    assert pointer.read_text() == "epoch_1.pth\n"
    assert find_latest_checkpoint(tmp_path) == path
    assert _temp_files(tmp_path) == []


def test_pointer_to_a_file_outside_work_dir_is_absolute(tmp_path: Path) -> None:
    outside = save_checkpoint({"a": 1}, tmp_path / "elsewhere" / "epoch_9.pth")
    work_dir = tmp_path / "work"
    write_last_checkpoint(work_dir, outside)
    assert Path((work_dir / LAST_CHECKPOINT).read_text().strip()) == outside.resolve()
    assert find_latest_checkpoint(work_dir) == outside.resolve()


def test_pointer_to_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="save the checkpoint first"):
        write_last_checkpoint(tmp_path, tmp_path / "epoch_3.pth")
    assert not (tmp_path / LAST_CHECKPOINT).exists()


def test_nothing_to_resume_from_gives_none(tmp_path: Path) -> None:
    assert find_latest_checkpoint(tmp_path) is None
    assert find_latest_checkpoint(tmp_path / "does-not-exist") is None
    assert read_last_checkpoint(tmp_path) is None


def test_missing_pointed_file_falls_back_to_the_highest_number_with_a_warning(
    tmp_path: Path,
) -> None:
    for n in (2, 10, 9):
        save_checkpoint({"epoch": n}, tmp_path / f"epoch_{n}.pth")
    save_checkpoint({"best": 1}, tmp_path / "best_acc_epoch_99.pth")
    write_last_checkpoint(tmp_path, tmp_path / "epoch_10.pth")
    (tmp_path / "epoch_10.pth").unlink()
    with pytest.warns(UserWarning, match="epoch_10.pth.*does not exist.*epoch_9.pth"):
        assert find_latest_checkpoint(tmp_path) == tmp_path / "epoch_9.pth"


def test_missing_pointer_falls_back_to_periodic_checkpoints(tmp_path: Path) -> None:
    save_checkpoint({"i": 1}, tmp_path / "iter_500.pth")
    with pytest.warns(UserWarning, match="is missing"):
        assert find_latest_checkpoint(tmp_path) == tmp_path / "iter_500.pth"


# --- prune_checkpoints (max_keep_ckpts) --------------------------------------------------


def test_prune_keeps_the_newest_and_the_pointed_and_best_files(tmp_path: Path) -> None:
    for n in range(1, 6):
        save_checkpoint({"epoch": n}, tmp_path / f"epoch_{n}.pth")
    save_checkpoint({"best": 1}, tmp_path / "best_acc_epoch_1.pth")
    save_checkpoint({"i": 1}, tmp_path / "iter_3.pth")
    write_last_checkpoint(tmp_path, tmp_path / "epoch_2.pth")
    deleted = prune_checkpoints(tmp_path, keep=2)
    assert deleted == [tmp_path / "epoch_1.pth", tmp_path / "epoch_3.pth"]
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == [
        "best_acc_epoch_1.pth",
        "epoch_2.pth",
        "epoch_4.pth",
        "epoch_5.pth",
        "iter_3.pth",
        LAST_CHECKPOINT,
    ]
    assert prune_checkpoints(tmp_path, keep=1, pattern="iter") == []


def test_prune_with_minus_one_keeps_everything(tmp_path: Path) -> None:
    for n in range(1, 4):
        save_checkpoint({"epoch": n}, tmp_path / f"epoch_{n}.pth")
    assert prune_checkpoints(tmp_path, keep=-1) == []
    assert len(list(tmp_path.glob("epoch_*.pth"))) == 3


@pytest.mark.parametrize("keep", [0, -2, 1.5, True, "2"])
def test_prune_rejects_bad_keep(tmp_path: Path, keep: object) -> None:
    with pytest.raises(ValueError, match="`keep` \\(max_keep_ckpts\\) must be a positive int"):
        prune_checkpoints(tmp_path, keep=keep)  # type: ignore[arg-type]


def test_prune_rejects_an_unknown_pattern(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`pattern` must be 'epoch'"):
        prune_checkpoints(tmp_path, keep=1, pattern="epoch_*.pth")


# --- SIGKILL while a checkpoint is being written ------------------------------------------

_KILLED_SAVE = """
import sys
from pathlib import Path

import torch

from camshaft.runner.checkpoint import save_checkpoint, write_last_checkpoint

work_dir = Path(sys.argv[1])
first = save_checkpoint({"meta": {"epoch": 1}, "w": torch.ones(3)}, work_dir / "epoch_1.pth")
write_last_checkpoint(work_dir, first)
big = {f"w{i}": torch.empty(1 << 20) for i in range(75)}  # 75 x 4 MiB = 300 MiB
print("saving", flush=True)
second = save_checkpoint({"meta": {"epoch": 2}, "state_dict": big}, work_dir / "epoch_2.pth")
write_last_checkpoint(work_dir, second)
print("finished", flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_during_save_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    script = tmp_path / "killed_save.py"
    script.write_text(_KILLED_SAVE)
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(work_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        temp: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            temp = list(work_dir.glob(".epoch_2.pth.*.tmp"))
            if temp and temp[0].exists() and temp[0].stat().st_size > 0:
                break
            time.sleep(0.0005)
        assert proc.poll() is None, (
            "the child finished before it could be killed mid-save: "
            + proc.communicate()[1].decode(errors="replace")
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert temp, "the temp file of epoch_2.pth never appeared"
    assert not (work_dir / "epoch_2.pth").exists()
    latest = find_latest_checkpoint(work_dir)
    assert latest == work_dir / "epoch_1.pth"
    loaded = read_checkpoint(latest)
    assert loaded["meta"] == {"epoch": 1}
    assert torch.equal(loaded["w"], torch.ones(3))
    # the next save to the same name clears the killed save's leftover
    save_checkpoint({"meta": {"epoch": 2}}, work_dir / "epoch_2.pth")
    assert _temp_files(work_dir) == []
