# The backup runner: bin/backup-task.js (operations/backup/task.ts, the same backup as
# `db-platform backup run --server`) and the per-service metrics publisher bin/stats-task.js
# (operations/stats/task.ts; its task definition overrides the entrypoint) with the PostgreSQL
# client tools of one major version
# (pg_dump and pg_restore must match the server's major). Built and pushed to ECR by the stack
# (components/backups/backups.ts, one image per major in use); run by ECS Fargate on a schedule.
# Build context: the repository root.   docker build -f docker/backup-runner.Dockerfile --build-arg PG_MAJOR=16 .
FROM node:20.20.2-bookworm-slim

ARG PG_MAJOR
RUN test -n "$PG_MAJOR" || { echo "--build-arg PG_MAJOR=<major> is required" >&2; exit 1; }

# PostgreSQL's own Debian repository (PGDG) carries the client tools of every supported major.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; \
    apt-get purge -y curl; apt-get autoremove -y; rm -rf /var/lib/apt/lists/*; \
    "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_dump" --version

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin/backup-task.js bin/stats-task.js bin/run-task.js ./bin/
COPY operations ./operations
COPY components ./components
COPY scripts/postgres ./scripts/postgres
COPY Pulumi.yaml Pulumi.*.yaml tsconfig.json ./

USER node
# The task definition names the stack and server (DB_PLATFORM_STACK, DB_PLATFORM_SERVER).
ENTRYPOINT ["node", "bin/backup-task.js"]
