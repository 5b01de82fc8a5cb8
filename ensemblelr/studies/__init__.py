"""Studies run by ``ensemblelr reproduce NAME``.

Each study module exposes ``add_arguments(parser)`` (its own options) and
``run(args) -> dict`` (trains, evaluates, prints a table and writes
``results.json`` and figures under ``args.out``). The CLI imports a study only when
it is asked for, so ``ensemblelr --help`` stays fast.
"""

# name -> (module path, one-line help)
STUDIES: dict[str, tuple[str, str]] = {
    "gaussian": ("ensemblelr.studies.gaussian", "Gaussian N(+0.1,1) vs N(-0.1,1) classification study"),
    "lhco": ("ensemblelr.studies.lhco", "LHC Olympics R&D dijet classification study (needs --data)"),
    "regression": ("ensemblelr.studies.regression", "parametrized-classifier regression study"),
    "noniid": ("ensemblelr.studies.noniid", "ensembles with a shared per-ensemble nuisance"),
    "dilution": ("ensemblelr.studies.dilution", "gradient dilution in per-ensemble training"),
}
