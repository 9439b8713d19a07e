# Baton in a container. Configure Slack or Teams through the environment; for the sign-in-less
# local web chat on 0.0.0.0 you must also set BATON_WEB_PUBLIC=1 (Baton refuses otherwise).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY storage ./storage
COPY adapters ./adapters
RUN pip install . && useradd --create-home --uid 10001 baton && mkdir /data && chown baton /data

USER baton
WORKDIR /data
ENV DATABASE_URL=sqlite+aiosqlite:////data/baton.db BATON_HOST=0.0.0.0 BATON_PORT=3978
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3978/healthz', timeout=4).status == 200 else 1)"
CMD ["baton", "serve"]
