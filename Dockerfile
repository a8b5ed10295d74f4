# One image for every turnout-watch service (worker, replay, scraper, observer intake).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY turnout_watch ./turnout_watch
COPY ingest ./ingest
COPY streams ./streams
COPY detectors ./detectors
COPY dashboards ./dashboards
COPY data ./data
RUN pip install .
# the scraper's archive and the intake's SQLite + spool live on volumes mounted here (docker-compose.yml)
RUN mkdir -p /var/lib/turnout-watch && chown nobody:nogroup /var/lib/turnout-watch
USER nobody
ENTRYPOINT ["turnout-watch"]
