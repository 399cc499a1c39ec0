# linkerd-tcp image: Node 24 runs the TypeScript sources directly (type stripping).
#   build: docker build -t linkerd-tcp .
#   run:   docker run --rm -p 7474:7474 -p 9989:9989 -v "$PWD/example.yml:/config.yml:ro" linkerd-tcp /config.yml
# Listeners default to 127.0.0.1: set `ip: 0.0.0.0` on servers and admin to reach them from outside the container.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the image's own Node 24 replaces the `node` devDependency.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
USER node
EXPOSE 7474 9989
ENTRYPOINT ["node", "/app/bin/linkerd-tcp.js"]
