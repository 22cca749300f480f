# image-enhancer: CPU image. For the GPU variant see README "Docker": base the runtime stage on
# nvidia/cuda:12.x-cudnn-runtime with Node 20 added, and run `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`
# in the build stage (it downloads onnxruntime's CUDA provider libraries).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY adapters ./adapters
COPY config ./config
COPY models/manifest.json ./models/manifest.json
# npm ci compiles TypeScript (prepare); the models are converted and verified at build time, not at first use.
RUN npm ci --no-audit --no-fund && npm run models && npm prune --omit=dev

FROM node:20-bookworm-slim
# A font for the labels of the before/after pictures; tini as the container's init (below).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=536870912 \
    MALLOC_TRIM_THRESHOLD_=4294967296 \
    MALLOC_ARENA_MAX=1
COPY --from=build /app /app
RUN mkdir -p inbox outbox data
VOLUME ["/app/inbox", "/app/outbox", "/app/data"]
# The service is the container's main process, under tini: no npm in between (npm start used to be here, and
# SIGTERM reached only npm's shell, never the service), and the malloc settings above mean bin/enhancer.js runs
# it in-process without a re-exec. node as PID 1 would ignore SIGTERM (the kernel drops signals PID 1 has no
# handler for until the service installs its own) and reap no zombies; tini passes signals on and reaps.
# On SIGTERM the service gives the running job shutdownGraceMs (15 s) to finish: docker stop waits only 10 s by
# default before SIGKILL, so run with --stop-timeout 30 or `docker stop -t 30` (README "Docker").
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "bin/enhancer.js", "serve"]
