# Edge Gateway container. Build: docker build -t edge-gateway .
# Run against the host's BlueZ (the D-Bus socket is all it needs):
#   docker run -d --name edge-gateway --net=host \
#     -v /run/dbus:/run/dbus:ro -v edge-gateway-data:/var/lib/edge-gateway \
#     -v $PWD/gateway.toml:/etc/edge-gateway/gateway.toml:ro edge-gateway
# Demo, no radio needed:  docker run --rm -p 8080:8080 edge-gateway demo --host 0.0.0.0
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATEWAY_CONFIG=/etc/edge-gateway/gateway.toml \
    GATEWAY_DATA_DIR=/var/lib/edge-gateway

WORKDIR /opt/edge-gateway
# The install script (README's first command uses it too) finds python3.11 on PATH and
# apt-installs dbus-daemon for the simulator/demo; nothing else is needed at run time.
COPY pyproject.toml requirements.lock README.md ./
COPY scripts ./scripts
COPY gateway ./gateway
COPY drivers ./drivers
COPY sync ./sync
RUN scripts/install \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/edge-gateway edge-gateway \
    && mkdir -p /var/lib/edge-gateway /etc/edge-gateway \
    && touch /etc/edge-gateway/gateway.toml \
    && chown edge-gateway /var/lib/edge-gateway && chmod 0700 /var/lib/edge-gateway

ENV PATH=/opt/edge-gateway/.venv/bin:$PATH
USER edge-gateway
VOLUME ["/var/lib/edge-gateway"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/v1/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["edge-gateway"]
CMD ["run"]
