"""A one-file C++ stand-in for llama.cpp's tree, for the win64 cross path of the engine recipe:
seconds instead of the half hour the real sources take.

``std::thread`` and ``std::mutex`` pull in libstdc++ and winpthread, the runtime DLLs a static
mingw link must absorb; ``--version`` answers on stderr like llama-server, a plain run prints
``thread ran``. :func:`write_tiny_cpp_tree` puts the ``llama-server`` target in ``bin/`` as
llama.cpp does (wrap it with :func:`tests.support.tiny_cmake.write_fake_sdist`).
"""

from __future__ import annotations

from pathlib import Path

from tests.packaging.support import need
from tests.support.tiny_cmake import write_fake_sdist
from victor_gui.services.engine_build import EngineProgress
from victor_gui.services.engine_cross import MINGW_PACKAGES, WIN64, check_cross_tools, find_cross_tools
from victor_gui.services.engine_install import build_from_sdist

MAIN_CPP = r"""#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
        std::fprintf(stderr, "version: 1 (tiny cross)\n");
        return 0;
    }
    std::mutex m;
    std::string said;
    std::thread t([&] { std::lock_guard<std::mutex> g(m); said = "thread ran"; });
    t.join();
    std::printf("%s\n", said.c_str());
    return 0;
}
"""


def write_tiny_cpp_tree(root: Path) -> Path:
    """Write the project under ``root`` (which must not exist) and return ``root``."""
    (root / "tools" / "server").mkdir(parents=True)  # the recipe checks the tree has it
    (root / "main.cpp").write_text(MAIN_CPP)
    (root / "CMakeLists.txt").write_text("\n".join([
        "cmake_minimum_required(VERSION 3.13)",
        "project(tiny CXX)",
        "set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)",
        "add_executable(llama-server main.cpp)",
        "",
    ]))
    return root


def mingw_tools() -> dict[str, str]:
    """The cross tools; skip (locally) or fail (under CI) when they are missing."""
    found = find_cross_tools(WIN64)
    need(f"the mingw-w64 cross tools ({' '.join(MINGW_PACKAGES)})", all(found.values()))
    return check_cross_tools(WIN64)


async def cross_build_tiny(tmp_path: Path) -> tuple[list[EngineProgress], Path]:
    """The tiny C++ tree through the recipe's win64 path: its events and the installed exe."""
    tree = write_tiny_cpp_tree(tmp_path / "tree")
    sdist = write_fake_sdist(tmp_path / "dl", "0.0.1", tree)
    events = [e async for e in build_from_sdist(sdist, work_dir=tmp_path / "work", dest_dir=tmp_path / "dest",
                                                opt="O2", native=False, jobs=1, target=WIN64)]
    assert events[-1].phase == "done" and events[-1].path is not None
    return events, events[-1].path
