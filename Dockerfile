# One image recipe for every service: docker build --build-arg SERVICE=booking -t appointments-booking .
FROM python:3.11-slim AS build
ARG SERVICE
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
COPY tools tools
# The service and libs/common, nothing else; installed into the venv, not linked to the sources.
RUN uv sync --frozen --no-dev --no-editable --package "appointments-${SERVICE}" --python /usr/local/bin/python3

FROM python:3.11-slim
ARG SERVICE
ENV SERVICE=${SERVICE} PATH=/app/.venv/bin:$PATH HTTP_HOST=0.0.0.0 PYTHONUNBUFFERED=1
COPY --from=build /app/.venv /app/.venv
RUN useradd --system --no-create-home --uid 10001 app
USER 10001
HEALTHCHECK --interval=5s --timeout=3s --retries=20 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"HTTP_PORT\", os.environ.get(\"GATEWAY_PORT\", \"8080\"))}/readyz', timeout=2)"
# Migrate (a no-op when current), then serve. In Kubernetes the migrate step runs as an init container.
CMD ["sh", "-c", "python -m \"$SERVICE\" migrate && exec python -m \"$SERVICE\""]
