"""`ptrh synth ...`: synthetic data. `synth centers` writes multi-center demo data; other
generators (e.g. `synth paper`) add their command to the same `synth_app` in this file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError, run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

synth_app = typer.Typer(help="Generate synthetic registries (demo centers, the calibrated paper cohort).", no_args_is_help=True)


@synth_app.command("centers")
def centers_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder (centers/, truth/, mappings/, manifest.json).")],
    patients: Annotated[int | None, typer.Option("--patients", help="Patients in all, split evenly over the centers (--patients 50000 --centers 100: 500 each).")] = None,
    patients_per_center: Annotated[int | None, typer.Option("--patients-per-center", help="Patients in each center instead (default 40 when neither is given).")] = None,
    centers: Annotated[int | None, typer.Option("--centers", help="Number of centers (cycling through the mappings in mappings/, each a center's shape; default one per mapping).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 20240601,
    defects: Annotated[bool, typer.Option("--defects", help="Plant realistic defects; lists them in defects.json.")] = False,
    format: Annotated[str, typer.Option("--format", help="Format of the canonical truth extracts: csv or parquet.")] = "csv",
    truth_only: Annotated[bool, typer.Option("--truth-only", help="Write only the canonical truth (fast, for scale tests).")] = False,
) -> None:
    """Write demo centers, each in its own shape (GBK CSV in Chinese; Latin-1 semicolon CSV
    with decimal commas; an Excel workbook in US units; SPSS files), the canonical truth each
    one stands for, and the mappings that read them."""

    def body() -> int:
        from ..synth.centers import generate_centers

        if format not in ("csv", "parquet"):
            raise UserError(f"--format is csv or parquet, not '{format}'")
        from ..synth.centers import demo_mappings, split_patients

        n_centers = len(demo_mappings()) if centers is None else centers
        if n_centers < 1:
            raise UserError("--centers must be at least 1")
        if patients is not None and patients_per_center is not None:
            raise UserError("give --patients (in all) or --patients-per-center, not both")
        if patients is not None:
            if patients < n_centers:
                raise UserError(f"--patients {patients} is fewer than one patient for each of the {n_centers} centers")
            sizes: int | list[int] = split_patients(patients, n_centers)
        else:
            sizes = 40 if patients_per_center is None else patients_per_center
            if sizes < 1:
                raise UserError("--patients-per-center must be at least 1")
        manifest = generate_centers(out, sizes, seed, defects=defects, centers=n_centers, truth_format=format, render_files=not truth_only)
        t = Table(title=f"Demo centers in {out}", show_edge=False)
        for c in ("center", "shape", "patients", "transfusions", "lab rows", "files", "mapping"):
            t.add_column(c)
        for c in manifest["centers"]:
            t.add_row(
                c["center_id"], c["shape"], f"{c['rows'].get('patients', 0):,}", f"{c['rows'].get('transfusions', 0):,}",
                f"{c['rows'].get('labs', 0):,}", "-" if truth_only else c["folder"], "-" if truth_only else c["mapping"],
            )
        console.print(t)
        if defects:
            console.print(f"{len(manifest['defects'])} planted defects listed in {out / 'defects.json'}")
        console.print(f"canonical truth in {out / 'truth'}; validate a center with: ptrh validate {out}/centers/<key> --mapping {out}/mappings/<key>.yaml")
        return 0

    raise typer.Exit(run_guarded(body, err_console))


@synth_app.command("paper")
def paper_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder: a canonical extract (one CSV per CDM table).")],
) -> None:
    """Write the calibrated single-center study cohort (44 patients: 26 CAR-T, 18 chemotherapy)
    whose analysis reproduces every number the reference study publishes (see `ptrh reproduce`)."""

    def body() -> int:
        from ..synth.paper import generate_paper_cohort

        generate_paper_cohort(out)
        n = {p.stem: max(0, sum(1 for _ in p.open(encoding="utf-8")) - 1) for p in sorted(Path(out).glob("*.csv"))}
        console.print(f"study cohort written to {out}: " + ", ".join(f"{k} {v:,}" for k, v in n.items()))
        return 0

    raise typer.Exit(run_guarded(body, err_console))


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")
