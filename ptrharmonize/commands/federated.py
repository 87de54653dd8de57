"""`ptrh federated ...`: the study on a vantage6 network, where patient rows stay at each
center (ptrharmonize/federated/, docs/federated.md). Needs the extra:
`pip install 'ptrharmonize[federated]'`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError, run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

federated_app = typer.Typer(
    help="Federated mode on vantage6: only aggregates leave the centers (docs/federated.md).",
    no_args_is_help=True)


def _need_vantage6(what: str = "vantage6.algorithm.tools") -> None:
    import importlib.util

    if importlib.util.find_spec(what.split(".")[0]) is None or importlib.util.find_spec(what) is None:
        raise UserError(f"{what} is not installed: pip install 'ptrharmonize[federated]'")


@federated_app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder (stores/, pooled/, federated/, comparison.json, release-logs/).")] = Path("ptrh-federated-demo"),
    patients_per_center: Annotated[int, typer.Option("--patients-per-center", help="Demo patients at each center.")] = 150,
    centers: Annotated[int, typer.Option("--centers", help="Number of demo centers (one node each).")] = 3,
    min_count: Annotated[int, typer.Option("--min-count", help="Each node's minimum cell count (disclosure control).")] = 5,
    config: Annotated[Path | None, typer.Option("--config", help="Definitions merged over schemas/definitions.yaml, sent to every node.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the demo centers.")] = 20240601,
) -> None:
    """Run the whole study on a mock vantage6 network of demo centers (one store each,
    vantage6's MockAlgorithmClient: no server, no Docker) and next to it the pooled
    run-analysis of the same data; print both and the differences. Exit 1 if a quantity that
    federated mode computes exactly differs from the pooled one."""

    def body() -> int:
        _need_vantage6()
        if patients_per_center < 1 or centers < 1 or min_count < 1:
            raise UserError("--patients-per-center, --centers and --min-count must be at least 1")
        if config is not None and not config.is_file():
            raise UserError(f"--config: no such file: {config}")
        from ..federated.demo import run_demo

        with console.status("building one store per center, running pooled and federated"):
            cmp = run_demo(out, patients_per_center, centers, min_count, config, seed)
        _print(cmp, out)
        return 1 if cmp["exact_differences"] or not cmp["qa_equal"] else 0

    raise typer.Exit(run_guarded(body, err_console))


def _print(cmp: dict[str, Any], out: Path) -> None:
    fed = json.loads((out / "federated" / "results.json").read_text(encoding="utf-8"))
    pooled = json.loads((out / "pooled" / "results.json").read_text(encoding="utf-8"))
    t = Table(title=f"Federated vs pooled: {len(cmp['centers'])} centers, "
                    f"{cmp['patients_per_center']} patients each, minimum cell count {cmp['min_count']}")
    for col in ("analysis", "status", "exact: equal", "max rel. diff", "exact: DIFFER",
                "approximate", "refused"):
        t.add_column(col)
    for name, a in cmp["analyses"].items():
        t.add_row(name, a["status"], str(a["exact_equal"]), f"{a['max_relative_difference']:.1e}",
                  str(len(a["exact_differ"]) + len(a["missing"])), str(len(a["approximate"])),
                  str(len(a["refused"])))
    console.print(t)
    h = Table(title="Headline results (pooled | federated)")
    for col in ("analysis", "pooled statistic", "pooled p", "federated statistic", "federated p"):
        h.add_column(col)
    for name, p in pooled["analyses"].items():
        f = fed["analyses"][name]
        h.add_row(name, _n(p.get("statistic")), _n(p.get("p_value")),
                  _n(f.get("statistic")) if f.get("status") != "refused" else "refused",
                  _n(f.get("p_value")))
    console.print(h)
    for name, a in cmp["analyses"].items():
        for path, pv, fv in a["exact_differ"]:
            console.print(f"[bold red]DIFFERS[/bold red] {path}: pooled {pv!r}, federated {fv!r}")
        for path in a["missing"]:
            console.print(f"[bold red]MISSING[/bold red] {path}")
        f = fed["analyses"].get(name) or fed.get(name) or {}  # an analysis, or the flows
        if f.get("status") == "refused":
            why = f.get("centers_refused") or f.get("reason")
            console.print(f"[yellow]refused[/yellow] {name}: {why}")
    console.print(f"QA rule results pooled equal: {cmp['qa_equal']}")
    cost = Table(title="Cost: rounds and bytes sent per node")
    for col in ("analysis", "rounds", "max bytes/node", "total bytes"):
        cost.add_column(col)
    for label, c in (cmp.get("cost") or {}).items():
        cost.add_row(label, str(c["rounds"]), f"{c['bytes_max_node']:,}", f"{c['bytes_total']:,}")
    console.print(cost)
    console.print(f"results: {out / 'federated' / 'results.json'}, {out / 'pooled' / 'results.json'}, "
                  f"{out / 'comparison.json'}; release logs: {out / 'release-logs'}; QA report: "
                  f"ptrh qa-report --store {out / 'federated' / 'qa-store.duckdb'} --out qa.html")


def _n(x: Any) -> str:
    return "" if x is None else f"{x:.6g}" if isinstance(x, float) else str(x)


@federated_app.command("run")
def run_cmd(
    collaboration: Annotated[int, typer.Option("--collaboration", help="vantage6 collaboration id.")],
    organizations: Annotated[str, typer.Option("--organizations", help="Comma-separated organisation ids whose nodes hold a ptrh store.")],
    server: Annotated[str, typer.Option("--server", help="vantage6 server URL, e.g. https://v6.example.org")],
    username: Annotated[str, typer.Option("--username", help="vantage6 user; password from PTRH_V6_PASSWORD or prompted.")],
    image: Annotated[str, typer.Option("--image", help="The algorithm image built from Dockerfile.federated.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json.")],
    port: Annotated[int, typer.Option("--port", help="Server port.")] = 443,
    api_path: Annotated[str, typer.Option("--api-path", help="Server API path.")] = "/api",
    database: Annotated[str, typer.Option("--database", help="Node database label of the ptrh store.")] = "ptrh",
    central_organization: Annotated[int | None, typer.Option("--central-organization", help="Organisation whose node runs the central part (default: the first).")] = None,
    private_key: Annotated[Path | None, typer.Option("--private-key", help="Organisation private key, when the collaboration is encrypted.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Definitions merged over schemas/definitions.yaml, sent to every node.")] = None,
    min_count: Annotated[int | None, typer.Option("--min-count", help="Ask for a stricter minimum cell count than the nodes' own (never laxer).")] = None,
) -> None:
    """Run the study on a real vantage6 network (not tested here: no server was available;
    docs/federated.md)."""

    def body() -> int:
        import os

        from ..analysis.runner import write_json
        from ..cdm import load_definitions

        if config is not None and not config.is_file():
            raise UserError(f"--config: no such file: {config}")
        try:
            orgs = [int(x) for x in organizations.split(",") if x.strip()]
        except ValueError as exc:
            raise UserError("--organizations: comma-separated organisation ids, e.g. 2,3,4") from exc
        if not orgs:
            raise UserError("--organizations: at least one organisation id")
        _need_vantage6("vantage6.client")
        from vantage6.client import Client

        password = os.environ.get("PTRH_V6_PASSWORD") or typer.prompt("password", hide_input=True)
        client = Client(server, port, api_path, log_level="warn")
        client.authenticate(username, password)
        client.setup_encryption(str(private_key) if private_key else None)
        task = client.task.create(
            collaboration=collaboration, organizations=[central_organization or orgs[0]],
            name="ptrh federated study", image=image,
            description="ptrharmonize: the PTR study, federated",
            input_={"method": "central", "kwargs": {
                "definitions": load_definitions(config), "min_count": min_count,
                "organizations": orgs}},
            databases=[{"label": database}])
        with console.status(f"task {task['id']} running at the nodes"):
            res = client.wait_for_results(task["id"])
        items = res.get("data", res) if isinstance(res, dict) else res
        result = items[0]["result"] if isinstance(items[0], dict) and "result" in items[0] else items[0]
        result = json.loads(result) if isinstance(result, str) else result
        write_json(result, out / "results.json")
        from ..federated.qa_store import write_qa_store

        write_qa_store(result, out / "qa-store.duckdb")
        console.print(f"results: {out / 'results.json'}; QA: ptrh qa-report --store "
                      f"{out / 'qa-store.duckdb'} --out qa.html")
        return 0

    raise typer.Exit(run_guarded(body, err_console))


def register(app: typer.Typer) -> None:
    app.add_typer(federated_app, name="federated")
