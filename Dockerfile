# The mlctl image: ENTRYPOINT `mlctl`, so every command line the Kubernetes manifests render
# (`serve MODEL -e ENV ...` for a Deployment, `train-job MODEL ...` for a training Job) runs
# as the container's args; with no args it prints the help. It runs as uid 10001 and writes
# only to /tmp and /repo/.mlctl, so it works on a read-only root filesystem (the manifests
# mount emptyDirs there). The repository (environments/, providers/) goes at /repo, the
# working directory: mount it, or build `FROM` this image and `COPY` it in (docs/team-scale.md).
#   docker build -t mlctl .
#   docker run -p 8080:8080 -v "$PWD:/repo" mlctl serve churn-predictor -e prod \
#       --host 0.0.0.0 --port 8080 --insecure      # or -e MLCTL_SERVE_TOKEN=... without --insecure
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Optional dependencies stay out unless asked for: --build-arg EXTRAS=redis for an endpoint that
# fills features from a redis online store, EXTRAS=report for monitor report plots, EXTRAS=all.
ARG EXTRAS=""
RUN pip wheel --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}" uvloop httptools

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 --user-group mlctl \
    && mkdir /repo && chown mlctl:mlctl /repo
USER 10001:10001
WORKDIR /repo
# The port `serve` listens on in the rendered Deployment (endpoint `port`, default 8080). No
# HEALTHCHECK: the image runs more than the server; the Deployment has /ready and /health probes.
EXPOSE 8080
ENTRYPOINT ["mlctl"]
CMD ["--help"]
