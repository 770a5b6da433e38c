"""Command-line entry points that answer a user's mistake with one line on stderr, never a traceback."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import click

USAGE_ERROR = 2
RUNTIME_ERROR = 1


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses inf and nan, which compare past (or around) any bound."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number in the range {self._describe_range()}.", param, ctx)
        return number


def run_cli(
    command: click.Command,
    prog: str,
    expected: tuple[type[BaseException], ...],
    args: Sequence[str] | None = None,
) -> None:
    """Run a click command; usage errors exit 2 and `expected` errors exit 1, each as one line on stderr."""
    try:
        command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as error:  # a bare group command: its usage, as click prints it
        error.show()
        sys.exit(error.exit_code)
    except click.UsageError as error:
        hint = f" (see {prog} --help)" if not isinstance(error, click.BadParameter) else ""
        click.echo(f"{prog}: error: {_one_line(error.format_message())}{hint}", err=True)
        sys.exit(USAGE_ERROR)
    except click.ClickException as error:
        click.echo(f"{prog}: error: {_one_line(error.format_message())}", err=True)
        sys.exit(error.exit_code)
    except expected as error:
        click.echo(f"{prog}: error: {_one_line(str(error))}", err=True)
        sys.exit(RUNTIME_ERROR)
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
    except OSError as error:
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        click.echo(f"{prog}: error: {where}{error.strerror or error}", err=True)
        sys.exit(RUNTIME_ERROR)


def _one_line(text: str) -> str:
    return " ".join(text.split())
