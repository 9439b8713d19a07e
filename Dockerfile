# Baton in a container. Configure Slack or Teams through the environment; for the sign-in-less
# local web chat on 0.0.0.0 you must also set BATON_WEB_PUBLIC=1 (Baton refuses otherwise).
#
# The base image is pinned by tag and digest (the multi-platform index, linux/amd64 among them), so a rebuild
# gets the same Python and Debian. To move it on, put the "Digest:" that this prints after the @ below:
#   docker buildx imagetools inspect python:3.11-slim
FROM python:3.11-slim@sha256:be1575ed968de893bd54f4c56315ff7c4736ce522c1bca08fd521731aafc0d76

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 baton && mkdir /data && chown baton /data
WORKDIR /app

# Dependencies first, in a layer of their own: a change to the source does not reinstall them.
# The versions come from constraints.txt (the lock `make lock` writes), the same ones `make test` ran with.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY README.md LICENSE ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY storage ./storage
COPY adapters ./adapters
RUN pip install --no-deps . && pip check

USER baton
WORKDIR /data
# The SQLite database and its sealing key (baton.db.key beside it) live in /data: mount a volume there to keep them.
VOLUME /data
ENV DATABASE_URL=sqlite+aiosqlite:////data/baton.db BATON_HOST=0.0.0.0 BATON_PORT=3978
EXPOSE 3978
# Ready means the database answers and its schema is current (/readyz); the port follows BATON_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('BATON_PORT', '3978'), timeout=4)"]
CMD ["baton", "serve"]
