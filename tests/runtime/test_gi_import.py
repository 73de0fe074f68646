"""pydbus/gi are imported without asyncio, and asyncio still works afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from omc.runtime.adapters import systemd
systemd.import_gi()
import gi._ossighelper as helper
from gi.repository import GLib
GLib.MainContext.default().iteration(False)
loop = helper.get_event_loop(None).__name__
print(sorted(m for m in sys.modules if m.split('.')[0] in ('asyncio', 'ssl')), loop)
"""

AFTER = """
from omc.runtime.adapters import systemd
systemd.import_gi()
import asyncio
import gi._ossighelper as helper
from gi.repository import GLib

async def main():
    return helper.get_event_loop(None).__name__
print(type(asyncio.get_event_loop_policy()).__name__, asyncio.run(main()))
loop = GLib.MainLoop()
GLib.timeout_add(1, loop.quit)
loop.run()
print("mainloop ran")
"""


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout


def test_import_gi_keeps_asyncio_and_ssl_out() -> None:
    """import_gi() and a main-context iteration load neither asyncio nor ssl."""
    assert _python(PROBE).split() == ["[]", "DummyEventLoop"]


@pytest.mark.parametrize("line", ["_UnixDefaultEventLoopPolicy DummyEventLoop", "mainloop ran"])
def test_real_asyncio_and_glib_mainloop_work_after_import_gi(line: str) -> None:
    """A later `import asyncio` gets the real module; GLib.MainLoop.run() still works."""
    assert line in _python(AFTER).splitlines()


def test_import_gi_after_asyncio_uses_it() -> None:
    """When asyncio is already imported, gi gets the real module (no stub)."""
    code = (
        "import asyncio\nfrom omc.runtime.adapters import systemd\nsystemd.import_gi()\n"
        "import gi._ossighelper as h\nprint(h.asyncio is asyncio)"
    )
    assert _python(code).strip() == "True"
