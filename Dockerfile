# syntax=docker/dockerfile:1
# caelum-scheduler: one image for every process. The command picks the role:
#   docker run IMAGE api | scheduler | worker --host <id> | migrate
# The build stage compiles src/ to dist/ with the development dependencies; the image runs dist/
# with production dependencies only. The one transpiler left is esbuild, which loads the
# TypeScript fleet file (workers.config.ts) when a process starts; a .mjs fleet file needs none.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dependencies first, as their own layer; the build follows once the sources are in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Without the prepare script, which builds (that was the build stage's job, with TypeScript).
RUN npm pkg delete scripts.prepare \
 && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    BIND_ADDRESS=0.0.0.0 \
    CAELUM_DATA_DIR=/app/.caelum
WORKDIR /app
# Code and dependencies belong to root and are read-only to the service user.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json workers.config.ts ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
COPY examples ./examples
# Writable: the data folder (CPU jobs' outputs) and the checkpoint folders of the shipped
# workers.config.ts (var/checkpoints/<model>, relative to the config). Mount volumes here; an
# empty named volume takes this ownership on first use.
RUN mkdir -p /app/.caelum /app/var/checkpoints \
 && chown -R node:node /app/.caelum /app/var
USER node
EXPOSE 3000 9464
STOPSIGNAL SIGTERM
# Probes the api's unauthenticated health route (200 when Redis and Postgres answer). Worker and
# scheduler containers serve no HTTP API: override this there with a probe of their metrics
# port, http://127.0.0.1:${CAELUM_METRICS_PORT:-9464}/healthz (docker-compose.yml does), or
# `--health-cmd` / `--no-healthcheck` with docker run.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Run with an init (`docker run --init`, `init: true` in compose): workers start job process groups,
# and node as PID 1 does not reap orphaned grandchildren.
ENTRYPOINT ["node", "bin/caelum-scheduler.js"]
CMD ["api"]
