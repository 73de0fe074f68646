"""Every exit status of ``omc``, in one place (httpie's ``ExitStatus``).

The library raises; only :mod:`omc.compiler.cli` turns outcomes into these codes.

| code | name | when |
| --- | --- | --- |
| 0 | ``OK`` | every file compiled (warnings allowed); ``diff``: no difference |
| 1 | ``CONFIG_ERROR`` | at least one input file has an error diagnostic |
| 2 | ``USAGE`` | bad command line (argparse's own convention) |
| 3 | ``IO_ERROR`` | a file or directory could not be read or written |
| 4 | ``DIFFERS`` | ``omc diff``: the compiled units differ from the installed ones |
| 70 | ``INTERNAL`` | a bug: an unexpected exception (``--debug`` shows the traceback) |
| 130 | ``INTERRUPTED`` | SIGINT |

``CONFIG_ERROR`` wins over ``DIFFERS`` and ``IO_ERROR`` wins over both, so a
script can test ``$? -eq 4`` to mean exactly "valid configs, units out of date".
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes of ``omc``; 70 is sysexits' ``EX_SOFTWARE``."""

    OK = 0
    CONFIG_ERROR = 1
    USAGE = 2
    IO_ERROR = 3
    DIFFERS = 4
    INTERNAL = 70
    INTERRUPTED = 130

    @staticmethod
    def worst(*codes: ExitStatus) -> ExitStatus:
        """The status to report when several files ended differently."""
        order = (
            ExitStatus.OK,
            ExitStatus.DIFFERS,
            ExitStatus.CONFIG_ERROR,
            ExitStatus.IO_ERROR,
            ExitStatus.USAGE,
            ExitStatus.INTERNAL,
        )
        return max(codes, key=order.index, default=ExitStatus.OK)
