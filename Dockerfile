# linkerd-tcp image: the TypeScript sources compiled to dist/ in a build stage, run by Node 24.
#   build: docker build -t linkerd-tcp .
#   run:   docker run --rm -p 7474:7474 -p 9989:9989 -v "$PWD/example.yml:/config.yml:ro" linkerd-tcp /config.yml
# Listeners default to 127.0.0.1: set `ip: 0.0.0.0` on servers and admin to reach them from outside the container.

FROM node:24-slim AS build
# The native engine's toolchain (native/, built by `npm ci` with npm's node-gyp and the image's Node headers):
# node-gyp compiles the C with gcc and links the addon with g++.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make gcc g++ libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json binding.gyp ./
COPY native ./native
COPY src ./src
# `npm ci` builds the native engine (install) and runs `prepare`, which compiles src/ to dist/ with the pinned TypeScript.
# LINKERD_TCP_REQUIRE_NATIVE=1: an addon that does not build fails here, with native/build.sh's reason, not later.
RUN LINKERD_TCP_REQUIRE_NATIVE=1 npm ci --no-audit --no-fund && npm prune --omit=dev && test -f build/Release/linkerd_tcp_engine.node

FROM node:24-slim
ENV NODE_ENV=production
# V8's young generation capped at 8 MiB (workers get it anyway; this covers `workers: 1` too): TLS churn
# otherwise grows it to 128 MiB that stays resident (RELIABILITY.md, "Memory under TLS churn").
ENV NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/linkerd_tcp_engine.node ./build/Release/
COPY package.json ./
COPY bin ./bin
USER node
EXPOSE 7474 9989
ENTRYPOINT ["node", "/app/bin/linkerd-tcp.js"]
