"""Map user mistakes to one line on stderr and exit code 2 (click's usage-error code), never a traceback."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    exit_code = 2
