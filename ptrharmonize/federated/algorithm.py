"""The vantage6 algorithm: `PKG_NAME=ptrharmonize.federated.algorithm`.

Partial functions (run at each node, over that center's ptrh store):
- `partial_summary(definitions, min_count)`: every one-round aggregate (`node.summary`);
- `partial_glm(definitions, requests, min_count)`: logistic-regression sums (`node.glm_parts`).
Central function (run at one node, on behalf of the researcher):
- `central(definitions, min_count, organizations)`: the whole study (`study.run_study`).

The node's database is the ptrh store (a DuckDB file; node configuration `type: other`, see
docs/federated.md): vantage6's `@data` cannot load a DuckDB file, so `node_store` reads its
path from the node's environment (`<LABEL>_DATABASE_URI`), or, under vantage6's
MockAlgorithmClient, from the one-row data frame given as the organisation's dataset
(`store`, and optionally `min_count`, `release_log`).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

from vantage6.algorithm.tools.decorators import algorithm_client

from ..analysis._common import Context
from ..analysis.runner import open_store
from ..cdm import load_definitions
from ..db import frame
from . import node
from .disclosure import Policy, ReleaseLog
from .study import Cost, answer_bytes, run_study

_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass
class NodeConfig:
    store: Path
    min_count: int | None = None
    release_log: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> NodeConfig:
        mc = row.get("min_count")
        mc = None if mc is None or mc != mc else int(mc)  # NaN from pandas: not set
        log = row.get("release_log")
        return cls(Path(str(row["store"])), mc, None if log is None or log != log else str(log))

    def context(self, definitions: Mapping[str, Any]) -> Context:
        """The store opened read-only with the derived views under the coordinator's
        definitions; kept open between the rounds of one process (a real node starts a
        container per round and opens it once)."""
        st = self.store.stat()
        key = (str(self.store), st.st_mtime_ns, st.st_size, json.dumps(definitions, sort_keys=True,
                                                                          default=str))
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = _NodeContext(open_store(self.store, dict(definitions)),
                                           dict(definitions))
                while len(_CACHE) > 16:
                    _CACHE.popitem(last=False)[1].con.close()
            return _CACHE[key]


class _NodeContext(Context):
    """A Context that reads each population once (the rounds of a fit ask for it again)."""

    def __init__(self, con: Any, definitions: dict[str, Any]) -> None:
        super().__init__(con, definitions)
        self._populations: dict[str, Any] = {}

    def population(self, analysis_id: str) -> Any:
        if analysis_id not in self._populations:
            self._populations[analysis_id] = super().population(analysis_id)
        return self._populations[analysis_id]


def node_store(func: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the function its NodeConfig (see the module's docstring)."""

    @wraps(func)
    def wrapper(*args: Any, mock_data: list | None = None, **kwargs: Any) -> Any:
        if mock_data is not None:
            cfg = NodeConfig.from_row(mock_data[0].iloc[0].to_dict())
        else:
            label = os.environ["USER_REQUESTED_DATABASE_LABELS"].split(",")[0]
            cfg = NodeConfig(Path(os.environ[f"{label.upper()}_DATABASE_URI"]))
        return func(cfg, *args, **kwargs)

    wrapper.wrapped_in_data_decorator = True  # type: ignore[attr-defined]
    return wrapper


def _answer(cfg: NodeConfig, method: str, request: dict[str, Any], min_count: int | None,
            compute: Callable[[Context, Policy], Any], definitions: Mapping[str, Any]) -> dict:
    policy = Policy.for_node(cfg.min_count, min_count)
    ctx = cfg.context(definitions)
    centers = frame(ctx.con, "SELECT DISTINCT center_id FROM patients ORDER BY 1")[
        "center_id"].to_list()
    out = {"center": "+".join(centers), "min_count": policy.min_count,
           "answer": compute(ctx, policy)}
    ReleaseLog(cfg.release_log, cfg.store).write(method, request, out, policy)
    return out


@node_store
def partial_summary(cfg: NodeConfig, definitions: dict[str, Any], min_count: int | None = None,
                    sections: list[str] | None = None) -> dict[str, Any]:
    return _answer(cfg, "partial_summary", {"sections": sections}, min_count,
                   lambda ctx, pol: node.summary(ctx, pol, sections), definitions)


@node_store
def partial_glm(cfg: NodeConfig, definitions: dict[str, Any], requests: list[dict[str, Any]],
                min_count: int | None = None) -> dict[str, Any]:
    return _answer(cfg, "partial_glm", {"requests": requests}, min_count,
                   lambda ctx, pol: node.glm_parts(ctx, pol, requests), definitions)


class ClientNetwork:
    """Rounds over a vantage6 client (the real AlgorithmClient or the MockAlgorithmClient):
    one task per round to the chosen organisations, answers keyed by center."""

    def __init__(self, client: Any, organizations: list[int], definitions: dict[str, Any],
                 min_count: int | None) -> None:
        self.client, self.organizations = client, organizations
        self.definitions, self.min_count = definitions, min_count
        self.cost = Cost()
        self.min_counts: dict[str, int] = {}

    def round(self, method: str, kwargs: dict[str, Any], label: str) -> dict[str, Any]:
        task = self.client.task.create(
            input_={"method": method, "kwargs": {**kwargs, "definitions": self.definitions,
                                                  "min_count": self.min_count}},
            organizations=self.organizations, name=f"ptrh {label}",
            description=f"ptrharmonize federated study: {label} ({method})")
        results = self.client.wait_for_results(task_id=task["id"])
        answers, sizes = {}, {}
        for r in results:
            r = json.loads(r) if isinstance(r, str) else r
            answers[r["center"]] = r["answer"]
            sizes[r["center"]] = answer_bytes(r)
            self.min_counts[r["center"]] = r["min_count"]
        self.cost.add(label, sizes)
        self._forget_mock_history()
        return answers

    def _forget_mock_history(self) -> None:
        """vantage6's MockAlgorithmClient deep-copies itself, with every earlier task, run and
        result, for each organisation of each new task, which makes a fit of R rounds cost
        O(R^2). The study never reads an earlier round again, so under the mock client that
        history is dropped after each round (the real client keeps none locally)."""
        from vantage6.algorithm.tools.mock_client import MockAlgorithmClient

        if isinstance(self.client, MockAlgorithmClient):
            self.client.results.clear()
            self.client.runs.clear()
            self.client.tasks.clear()


@algorithm_client
def central(client: Any, definitions: dict[str, Any] | None = None,
            min_count: int | None = None, organizations: list[int] | None = None
            ) -> dict[str, Any]:
    """The study over the collaboration's organisations (or `organizations`)."""
    if organizations is None:
        organizations = [o["id"] for o in client.organization.list()]
    definitions = definitions or load_definitions(None)
    network = ClientNetwork(client, organizations, definitions, min_count)
    results, _ = run_study(network, definitions)
    results["federated"]["min_count"] = network.min_counts
    return results
