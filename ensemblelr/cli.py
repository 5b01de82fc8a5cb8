"""Command line: ``ensemblelr reproduce NAME [options]``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv  # the command as typed, for results.json
    if getattr(args, "_missing", False):
        print(f"study {args.study!r} is not available in this version", file=sys.stderr)
        return 2
    prefix = f"ensemblelr reproduce {args.study}: error:"
    # Checked before training: a full run would otherwise fail (or quietly skip its
    # LHCO part) only after hours of work.
    problem = _argument_problem(args)
    if problem:
        raise SystemExit(f"{prefix} {problem}")
    module = importlib.import_module(args._module)
    try:
        module.run(args)
    except (ValueError, FileNotFoundError) as exc:
        # Bad options or data surface as these; one line instead of a traceback.
        raise SystemExit(f"{prefix} {exc}") from exc
    return 0


def _argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options every study shares, or None."""
    out = getattr(args, "out", None)
    problem = None if out is None else _out_dir_problem(Path(out))
    if problem:
        return f"--out {str(out)!r} {problem}"
    data = getattr(args, "data", None)
    # A missing file is each study's call (lhco stops, the others skip their LHCO part
    # and say so); a file that exists but cannot be read would fail only after hours.
    if data is not None and args.study != "lhco" and Path(data).is_file():
        from .lhco import load_lhco

        try:
            load_lhco(data)
        except (ValueError, TypeError, ImportError) as exc:
            return f"--data: {exc}"
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        return f"--threads must be a positive integer, got {threads}."
    seed = getattr(args, "seed", 0)
    if not 0 <= seed < 2**32:
        return f"--seed must lie in [0, 2**32), got {seed}."
    return None


def _out_dir_problem(path: Path) -> str | None:
    """Why results cannot be written under ``path``, or None when they can."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == path else f" ({str(existing)!r} is a file)"
        return f"is not a directory{where}."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot be written ({str(existing)!r} is not writable)."
    return None


if __name__ == "__main__":
    raise SystemExit(main())
