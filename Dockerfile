# One image for every service of docker-compose.yml: web (gunicorn), worker (Celery, queue hsm,
# the only one given the SoftHSM token and PIN) and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=server.settings E2EE_DATA_DIR=/data LOG_FORMAT=json

# softhsm2: the PKCS#11 token the signing worker uses (a real HSM replaces its module path).
RUN apt-get update \
    && apt-get install -y --no-install-recommends softhsm2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin e2ee \
    && mkdir -p /data /var/lib/softhsm/tokens \
    && chown e2ee /data /var/lib/softhsm/tokens

WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY server ./server
COPY webdav ./webdav
COPY client ./client
COPY hsm ./hsm
RUN pip install --no-compile .

USER e2ee
EXPOSE 8000
CMD ["sh", "-c", "python manage.py bootstrap && exec gunicorn server.wsgi:application --bind 0.0.0.0:8000 --workers 3 --worker-class gthread --threads 4 --timeout 300 --access-logfile -"]
