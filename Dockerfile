# Serving image: `docker build -t mlctl-serve .` then
#   docker run -p 8000:8000 -v "$PWD:/repo" mlctl-serve churn-predictor -e prod
# The repository (environments/, state/, .mlctl/artifacts) is mounted at /repo; the server
# follows its state file and loads only artifacts whose sha256 matches it.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels . uvloop httptools

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 --user-group mlctl \
    && mkdir /repo && chown mlctl:mlctl /repo
USER 10001:10001
WORKDIR /repo
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"]
ENTRYPOINT ["mlctl", "-C", "/repo", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--help"]
