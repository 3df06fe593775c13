"""Windows GPU memory without extra packages: DXGI through ctypes, the registry as a fallback.

* DXGI (``dxgi.dll``): ``IDXGIAdapter1::GetDesc1`` gives ``DedicatedVideoMemory`` (total) and
  ``IDXGIAdapter3::QueryVideoMemoryInfo`` on the LOCAL segment gives the OS budget and current
  usage, so free = Budget - CurrentUsage (vram.md §7). Any vendor, Windows 10+.
* Registry: ``HardwareInformation.qwMemorySize`` under the display class key (total only).
  ``Win32_VideoController.AdapterRAM`` is never used: it is a uint32 and stops at 4 GiB.

Both run in a worker thread (see :func:`victor_gui.sizing.gpu.probe_windows`). This module
imports on every OS; its functions raise OSError off Windows. Not exercised by the Linux CI.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from victor_gui.sizing.hardware import GpuDevice

DISPLAY_CLASS = r"SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"
VENDORS = {0x10DE: "nvidia", 0x1002: "amd", 0x8086: "intel"}
_IGPU_DEDICATED = 1 << 30  # below this the adapter is an integrated GPU using system RAM
_SOFTWARE_ADAPTER = 2  # DXGI_ADAPTER_FLAG_SOFTWARE (Microsoft Basic Render Driver)


class _GUID(ctypes.Structure):
    _fields_ = [("Data1", ctypes.c_uint32), ("Data2", ctypes.c_uint16), ("Data3", ctypes.c_uint16),
                ("Data4", ctypes.c_ubyte * 8)]

    @classmethod
    def parse(cls, text: str) -> _GUID:
        h = text.replace("-", "")
        return cls(int(h[:8], 16), int(h[8:12], 16), int(h[12:16], 16),
                   (ctypes.c_ubyte * 8)(*bytes.fromhex(h[16:])))


class _AdapterDesc1(ctypes.Structure):
    _fields_ = [("Description", ctypes.c_wchar * 128), ("VendorId", ctypes.c_uint),
                ("DeviceId", ctypes.c_uint), ("SubSysId", ctypes.c_uint), ("Revision", ctypes.c_uint),
                ("DedicatedVideoMemory", ctypes.c_size_t), ("DedicatedSystemMemory", ctypes.c_size_t),
                ("SharedSystemMemory", ctypes.c_size_t), ("LuidLow", ctypes.c_uint32),
                ("LuidHigh", ctypes.c_int32), ("Flags", ctypes.c_uint)]


class _VideoMemoryInfo(ctypes.Structure):
    _fields_ = [("Budget", ctypes.c_uint64), ("CurrentUsage", ctypes.c_uint64),
                ("AvailableForReservation", ctypes.c_uint64), ("CurrentReservation", ctypes.c_uint64)]


IID_FACTORY1 = "770aae78-f26f-4dba-a829-253c83d1b387"
IID_ADAPTER3 = "645967a4-1392-4310-a798-8053ce3e93fd"


def _method(obj: ctypes.c_void_p, index: int, *argtypes: Any) -> Any:
    """The ``index``-th entry of a COM object's vtable as a callable taking ``obj`` first."""
    vtable = ctypes.cast(obj, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))).contents
    proto = ctypes.WINFUNCTYPE(ctypes.c_long, ctypes.c_void_p, *argtypes)  # type: ignore[attr-defined]
    return proto(vtable[index])


def _release(obj: ctypes.c_void_p) -> None:
    if obj:
        _method(obj, 2)(obj)  # IUnknown::Release


def dxgi_adapters() -> list[GpuDevice]:
    """Discrete adapters with total and free dedicated memory, via DXGI."""
    if sys.platform != "win32":
        raise OSError("DXGI exists on Windows only")
    dxgi = ctypes.WinDLL("dxgi")
    factory = ctypes.c_void_p()
    riid = _GUID.parse(IID_FACTORY1)
    if dxgi.CreateDXGIFactory1(ctypes.byref(riid), ctypes.byref(factory)) != 0:
        raise OSError("CreateDXGIFactory1 failed")
    devices: list[GpuDevice] = []
    try:
        enum_adapters1 = _method(factory, 12, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p))
        index = 0
        while True:
            adapter = ctypes.c_void_p()
            if enum_adapters1(factory, index, ctypes.byref(adapter)) != 0:
                break  # DXGI_ERROR_NOT_FOUND: no more adapters
            try:
                device = _describe(adapter, index)
                if device is not None:
                    devices.append(device)
            finally:
                _release(adapter)
            index += 1
    finally:
        _release(factory)
    return devices


def _describe(adapter: ctypes.c_void_p, index: int) -> GpuDevice | None:
    desc = _AdapterDesc1()
    if _method(adapter, 10, ctypes.POINTER(_AdapterDesc1))(adapter, ctypes.byref(desc)) != 0:
        return None
    if desc.Flags & _SOFTWARE_ADAPTER or desc.DedicatedVideoMemory < _IGPU_DEDICATED:
        return None  # the software renderer, or an iGPU whose memory is system RAM
    total = int(desc.DedicatedVideoMemory)
    free, known = total, False
    adapter3 = ctypes.c_void_p()
    riid = _GUID.parse(IID_ADAPTER3)
    if _method(adapter, 0, ctypes.POINTER(_GUID), ctypes.POINTER(ctypes.c_void_p))(
            adapter, ctypes.byref(riid), ctypes.byref(adapter3)) == 0:
        try:
            info = _VideoMemoryInfo()
            query = _method(adapter3, 14, ctypes.c_uint, ctypes.c_int, ctypes.POINTER(_VideoMemoryInfo))
            if query(adapter3, 0, 0, ctypes.byref(info)) == 0:  # node 0, DXGI_MEMORY_SEGMENT_GROUP_LOCAL
                free, known = max(0, min(total, int(info.Budget) - int(info.CurrentUsage))), True
        finally:
            _release(adapter3)
    return GpuDevice(VENDORS.get(desc.VendorId, "other"), desc.Description, total, free, index=index,
                     source="dxgi", free_known=known)


def registry_adapters() -> list[GpuDevice]:
    """Dedicated VRAM per display adapter from the registry (total only)."""
    if sys.platform != "win32":
        raise OSError("the display-class registry exists on Windows only")
    import winreg

    devices = []
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, DISPLAY_CLASS) as cls:
        i = 0
        while True:
            try:
                sub = winreg.EnumKey(cls, i)
            except OSError:
                break
            i += 1
            if not sub.isdigit():  # skip "Properties" (PermissionError) and friends
                continue
            try:
                with winreg.OpenKey(cls, sub) as key:
                    size = _reg_value(key, "HardwareInformation.qwMemorySize")
                    if size is None:
                        size = _reg_value(key, "HardwareInformation.MemorySize")
                    name = str(_reg_value(key, "DriverDesc") or "GPU")
            except OSError:
                continue
            if isinstance(size, int) and size >= _IGPU_DEDICATED:
                lower = name.lower()
                vendor = next((v for k, v in (("nvidia", "nvidia"), ("geforce", "nvidia"), ("radeon", "amd"),
                                              ("amd", "amd"), ("intel", "intel")) if k in lower), "other")
                devices.append(GpuDevice(vendor, name, size, size, index=int(sub), source="registry",
                                         free_known=False))
    return devices


def _reg_value(key: Any, name: str) -> int | str | None:
    if sys.platform != "win32":
        return None
    import winreg

    try:
        value, _ = winreg.QueryValueEx(key, name)
    except OSError:
        return None
    if isinstance(value, bytes):  # MemorySize is sometimes REG_BINARY
        return int.from_bytes(value[:8], "little")
    return value if isinstance(value, int | str) else None
