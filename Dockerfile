# The ptrharmonize vantage6 algorithm image (docs/federated.md), built from the wheel:
#
#   python3 -m pip wheel --no-deps -w dist .
#   docker build -t registry.example.org/ptrharmonize-federated:0.1.0 .
#
# vantage6 4.x runs `wrap_algorithm`, which reads the task's input (method, kwargs), calls
# ptrharmonize.federated.algorithm.<method> and writes its output; the node passes the ptrh
# store as the database labelled in the task (PTRH_DATABASE_URI for label "ptrh").
# NOT TESTED HERE: the machine this was written on had no Docker engine and no vantage6 server.
FROM python:3.11-slim

COPY dist/ /tmp/dist/
RUN set -eux; \
    wheel="$(ls /tmp/dist/ptrharmonize-*.whl | sort | tail -n 1)"; \
    pip install --no-cache-dir "${wheel}[federated]"; \
    rm -rf /tmp/dist

ENV PKG_NAME=ptrharmonize.federated.algorithm
# The store is opened read-only, never written; analyses spill to the container's /tmp.
ENV PTRH_MEMORY_LIMIT=1GB
CMD ["python", "-c", "from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()"]
