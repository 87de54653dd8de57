"""Federated mode on vantage6: the study across centers whose patient rows never leave them.

- `disclosure`: what may leave a node (minimum cell count, refusals, the release log);
- `node`: the aggregates a node computes over its own store (no vantage6 needed);
- `combine`, `logistic`, `rounds`, `study`: the coordinator's side, into run-analysis's
  results.json;
- `algorithm`: the vantage6 algorithm (partial and central functions), needs the extra
  `pip install 'ptrharmonize[federated]'`;
- `demo`: `ptrh federated demo`, the study on a mock network (vantage6's MockAlgorithmClient).

docs/federated.md describes the protocol, what is exact, what is approximate or refused, and
how to run it on a real network.
"""
