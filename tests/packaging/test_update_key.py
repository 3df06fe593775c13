"""Which update key a bundle ships: the release key unless a test build names another with
``VICTOR_BUNDLE_UPDATE_KEY`` (the Wine tier's), through the spec's own resource list."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.support import load_packaging_script
from tests.servers.release_feed import ReleaseKey

ROOT = Path(__file__).resolve().parents[2]
update_key = load_packaging_script("update_key")
ENV = update_key.ENV
UpdateKeyError = update_key.UpdateKeyError
bundled_update_key = update_key.bundled_update_key


def _spec_resource_datas(environ: dict[str, str], scratch_root: Path) -> list[tuple[str, str]]:
    """The spec's ``resource_datas()`` run as written (its two functions, lifted out of the spec,
    which PyInstaller otherwise executes whole), with ``environ`` as the build's environment."""
    tree = ast.parse((ROOT / "packaging" / "victor_gui.spec").read_text(encoding="utf-8"))
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("resource_datas",
                                                                                   "_under_resources")]
    assert len(funcs) == 2
    namespace: dict[str, Any] = {
        "ROOT": ROOT, "Path": Path, "tomllib": tomllib, "KEY_NAME": update_key.KEY_NAME,
        "bundled_update_key": lambda root, _scratch: bundled_update_key(root, scratch_root, environ)}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), "victor_gui.spec", "exec"), namespace)
    return namespace["resource_datas"]()


def test_a_release_build_ships_the_release_key(tmp_path: Path) -> None:
    datas = _spec_resource_datas({}, tmp_path)
    keys = [(src, dest) for src, dest in datas if Path(src).name == "update_key.pub"]
    assert keys == [(str(ROOT / "resources" / "update_key.pub"), "victor_gui/resources")]
    assert bundled_update_key(ROOT, tmp_path, {}) == ROOT / "resources" / "update_key.pub"


def test_a_test_build_ships_the_key_the_variable_names(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    key = ReleaseKey()
    pub = tmp_path / "test-key" / "public.pem"
    pub.parent.mkdir()
    pub.write_bytes(key.public_pem)
    datas = _spec_resource_datas({ENV: str(pub)}, tmp_path / "scratch")
    keys = [(src, dest) for src, dest in datas if Path(src).name == "update_key.pub"]
    assert keys == [(str(tmp_path / "scratch" / "update_key.pub"), "victor_gui/resources")]
    assert Path(keys[0][0]).read_bytes() == key.public_pem
    assert "not the release key" in capsys.readouterr().out
    # Every other resource is still there, in its own folder.
    assert (str(ROOT / "resources" / "model_capabilities.yaml"), "victor_gui/resources") in datas
    assert any(dest == "victor_gui/resources/icons" for _src, dest in datas)


@pytest.mark.parametrize("content", [None, b"not a key", "private"])
def test_a_named_file_that_is_not_a_public_key_stops_the_build(tmp_path: Path,
                                                                content: bytes | str | None) -> None:
    named = tmp_path / "key.pem"
    if content == "private":
        named.write_bytes(ReleaseKey().private_pem)
    elif isinstance(content, bytes):
        named.write_bytes(content)
    with pytest.raises(UpdateKeyError):
        bundled_update_key(ROOT, tmp_path / "scratch", {ENV: str(named)})
    assert not (tmp_path / "scratch" / "update_key.pub").exists()


def test_no_workflow_builds_a_release_with_another_update_key() -> None:
    """Release builds (the workflows) never set the variable; only the Wine tier does."""
    for workflow in (ROOT / ".github" / "workflows").glob("*.y*ml"):
        assert ENV not in workflow.read_text(encoding="utf-8"), workflow
    assert ENV not in (ROOT / "victor_gui").joinpath("services", "update_feed.py").read_text(encoding="utf-8")
