"""A tiny stand-in for llama.cpp's source tree, to drive the engine recipe with a real cmake and a
real compiler in seconds.

:func:`write_tiny_project` writes a two-file C project whose ``llama-server`` target lands in
``bin/`` as llama.cpp's does, and which answers ``--version`` like llama-server (on stderr).
Optional knobs: ``sources`` more C files (more ``[ NN%]`` steps), ``slow_step`` a custom command
that records its pid in a file and sleeps (to prove a cancel kills the build's whole process
group), ``fail`` a compile error. :func:`write_fake_sdist` wraps such a tree as
``llama_cpp_python-<V>/vendor/llama.cpp/`` in a ``.tar.gz`` like the PyPI sdist.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

MAIN_C = r"""#include <stdio.h>
#include <string.h>
int helper(int x);
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        fprintf(stderr, "version: 1 (tiny)\nbuilt with cc for the engine tests\n");
        return 0;
    }
    printf("%d\n", helper(41));
    return 0;
}
"""


def write_tiny_project(root: Path, *, sources: int = 1, slow_step: Path | None = None,
                       fail: bool = False) -> Path:
    """Write the project under ``root`` and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.c").write_text(MAIN_C)
    names = ["main.c"]
    for i in range(sources):
        body = f"int helper{i}(int x) {{ return x + {i}; }}\n"
        if i == 0:
            body += "int helper(int x) { return x + 1; }\n"
        if fail and i == 0:
            body += "this is not C;\n"
        (root / f"util{i}.c").write_text(body)
        names.append(f"util{i}.c")
    (root / "tools" / "server").mkdir(parents=True, exist_ok=True)
    (root / "tools" / "server" / "README.md").write_text("the real tree has server.cpp here\n")
    lines = [
        "cmake_minimum_required(VERSION 3.13)",
        "project(tiny C)",
        "set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)",
        f"add_executable(llama-server {' '.join(names)})",
    ]
    if slow_step is not None:
        # A grandchild of cmake --build (make -> sh -> sleep) that a cancel must not leave behind.
        lines += [
            f'add_custom_target(slow COMMAND sh -c "echo $$ > {slow_step}; exec sleep 60" VERBATIM)',
            "add_dependencies(llama-server slow)",
        ]
    (root / "CMakeLists.txt").write_text("\n".join(lines) + "\n")
    return root


def write_fake_sdist(dest: Path, version: str, tree: Path) -> Path:
    """``dest/llama_cpp_python-<version>.tar.gz`` holding ``tree`` as ``vendor/llama.cpp`` (plus
    a file outside it, which extraction must skip)."""
    top = f"llama_cpp_python-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{top}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(tree, arcname=f"{top}/vendor/llama.cpp")
        info = tarfile.TarInfo(f"{top}/setup.py")
        data = b"# not extracted\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out
