# One image for every turnout-watch service (worker, replay; scraper and intake as they land).
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
USER nobody
ENTRYPOINT ["turnout-watch"]
