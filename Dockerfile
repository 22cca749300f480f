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
# A font for the labels of the before/after pictures.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    MALLOC_MMAP_THRESHOLD_=536870912 \
    MALLOC_TRIM_THRESHOLD_=4294967296 \
    MALLOC_ARENA_MAX=1
COPY --from=build /app /app
RUN mkdir -p inbox outbox data
VOLUME ["/app/inbox", "/app/outbox", "/app/data"]
# npm passes SIGTERM on to the service, which finishes or keeps the running job and exits cleanly.
CMD ["npm", "start"]
