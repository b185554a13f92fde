# syntax=docker/dockerfile:1
# One image for every role of factorstream; the command chooses the role:
#   worker --role folds | sink ledger | sink lake | relay | serve | ingest serve |
#   dashboard | alerts run | kafka topics | kafka grant ...
# (docker-compose.yml and deploy/kubernetes/ run each; docs/deployment.md).
#
# The base is pinned by tag and digest (the multi-platform index of
# python:3.11.14-slim-bookworm); tests/unit/test_deployment_files.py checks every image is.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# -- build: the pinned dependencies, then the project, into a virtualenv -------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/factorstream
ENV PATH=/opt/factorstream/bin:$PATH
COPY requirements.lock /src/requirements.lock
# every package pinned with its hashes (pip refuses one whose hash differs); the lock
# holds every optional group (service, ingest, alerts, metrics, idp, and dev)
RUN pip install --require-hashes --no-deps -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY schemas /src/schemas
COPY verifiers /src/verifiers
COPY sources /src/sources
COPY streams /src/streams
COPY audit /src/audit
COPY analytics /src/analytics
COPY compliance /src/compliance
COPY alerts /src/alerts
COPY dashboard /src/dashboard
COPY factorstream /src/factorstream
# the build backend (setuptools) came from the lock too: nothing unhashed is downloaded
RUN pip install --no-deps --no-build-isolation /src

# -- runtime: the virtualenv, a user of its own, the data directory as a volume -----------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 factorstream \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin factorstream \
    && mkdir -p /data/streams \
    && chown -R 10001:10001 /data \
    && chmod 0700 /data
COPY --from=build /opt/factorstream /opt/factorstream
ENV PATH=/opt/factorstream/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/data \
    FACTORSTREAM_DATA_DIR=/data \
    FACTORSTREAM_CACHE_DIR=/data/cache
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# the worker's lockout API and probes, the MFA service, the HTTP ingest, the dashboard,
# the relay's, the alerts' and the sinks' probes
EXPOSE 6066 8070 8071 8050 9101 9102 9103
ENTRYPOINT ["factorstream"]
CMD ["--help"]
