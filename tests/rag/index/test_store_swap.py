"""Publishing a build (rag/index/store.py `swap_into_place`): one atomic exchange with
renameat2, and, where the C library or the filesystem lacks it, two renames that still
end with the new index in place and nothing left behind. Small folders, no model."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from rag.index import store
from rag.index.store import swap_into_place


def folder(path: Path, content: str) -> Path:
    path.mkdir()
    (path / "manifest.json").write_text(content)
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(content.encode() * 3)
    return path


def contents(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


class RenameLog:
    """os.rename as it really runs, with each call recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        self._rename = os.rename
        monkeypatch.setattr(store.os, "rename", self)

    def __call__(self, src: os.PathLike, dst: os.PathLike) -> None:
        self.calls.append((Path(src).name, Path(dst).name))
        self._rename(src, dst)


class _LibcWithout:
    """A C library without renameat2 (glibc before 2.28, musl, other systems)."""

    def __getattr__(self, name: str) -> object:
        raise AttributeError(name)


class _LibcRefusing:
    """renameat2 present but failing, as on a kernel or filesystem without it (ENOSYS,
    EINVAL); records that it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    def renameat2(self, *args: object) -> int:
        self.asked += 1
        return -1


@pytest.fixture
def old_and_new(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    out = folder(tmp_path / "index", "old build")
    tmp = folder(tmp_path / ".index.tmp-1234", "new build")
    return tmp, out, contents(tmp)


def test_renameat2_exchanges_in_one_step(
    old_and_new: tuple[Path, Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp, out, new = old_and_new
    renames = RenameLog(monkeypatch)
    swap_into_place(tmp, out)
    assert contents(out) == new
    assert sorted(p.name for p in out.parent.iterdir()) == ["index"]  # old build removed
    assert renames.calls == []  # no window without an index


@pytest.mark.parametrize("libc", [_LibcWithout, _LibcRefusing])
def test_without_renameat2_two_renames_publish_the_new_index(
    old_and_new: tuple[Path, Path, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
    libc: type,
) -> None:
    tmp, out, new = old_and_new
    fake = libc()
    monkeypatch.setattr(store.ctypes, "CDLL", lambda *a, **k: fake)
    renames = RenameLog(monkeypatch)
    swap_into_place(tmp, out)
    if isinstance(fake, _LibcRefusing):
        assert fake.asked == 1
    assert contents(out) == new
    assert sorted(p.name for p in out.parent.iterdir()) == ["index"]  # no backup left
    # The old index is moved aside first, then the new one takes its name.
    (aside, backup), (moved, published) = renames.calls
    assert (aside, published, moved) == ("index", "index", tmp.name)
    assert backup.startswith(".index.old-") and backup == renames.calls[0][1]


def test_a_crash_between_the_two_renames_leaves_the_old_index_beside(
    old_and_new: tuple[Path, Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the docstring promises: killed between the renames, the old index survives
    as `.<name>.old-*` and the new one as the temporary folder."""
    tmp, out, new = old_and_new
    old = contents(out)
    monkeypatch.setattr(store.ctypes, "CDLL", lambda *a, **k: _LibcWithout())
    rename = os.rename
    calls = []

    def crash_on_second(src: os.PathLike, dst: os.PathLike) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        rename(src, dst)

    monkeypatch.setattr(store.os, "rename", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        swap_into_place(tmp, out)
    (backup,) = [p for p in out.parent.iterdir() if p.name.startswith(".index.old-")]
    assert contents(backup) == old
    assert contents(tmp) == new
    assert not out.exists()


def test_first_build_is_one_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = folder(tmp_path / ".index.tmp-1", "first build")
    new = contents(tmp)
    renames = RenameLog(monkeypatch)
    swap_into_place(tmp, tmp_path / "index")
    assert contents(tmp_path / "index") == new
    assert renames.calls == [(".index.tmp-1", "index")]


def test_this_machine_has_renameat2() -> None:
    """The atomic path is the one taken here (Linux, glibc >= 2.28)."""
    assert hasattr(ctypes.CDLL(None), "renameat2")
