# Production image: the same code runs as web (gunicorn + uvicorn), worker and beat (celery).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 WARROOM_EMBEDDED=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
      postgresql-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN DJANGO_SECRET_KEY=build-only DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput
# Volume mount points exist (owned by warroom) so new named volumes take that owner.
RUN useradd --system --home /app warroom && mkdir -p /app/.run/media /app/.run/signing && chown -R warroom /app/.run
USER warroom
EXPOSE 8000
ENV WARROOM_HOST=0.0.0.0 WARROOM_PORT=8000
CMD ["python", "-m", "warroom.server"]
