"""Command line: ``ensemblelr reproduce NAME [options]``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .studies import STUDIES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ensemblelr",
        description="Learning from many collider events at once (arXiv:2101.07263).",
    )
    parser.add_argument("--version", action="version", version=f"ensemblelr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    reproduce = commands.add_parser(
        "reproduce", help="run one of the paper's studies end to end",
        description="Train and evaluate the models of one study; print a table and write "
        "results.json and figures.",
    )
    studies = reproduce.add_subparsers(dest="study", metavar="STUDY", required=True)
    for name, (module_path, help_text) in STUDIES.items():
        sub = studies.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_path)
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name != module_path:
                raise
            sub.set_defaults(_missing=True)
            continue
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", False):
        print(f"study {args.study!r} is not available in this version", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    module.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
