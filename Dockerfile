# Two stages: `build` installs everything (the development dependencies too) and compiles; the image that runs is
# `runtime`, with the production dependencies and the compiled dist/ only — no sources, no test or lint tools. The
# compiled code loads neither tsx nor TypeScript (test/deploy/image.test.ts), though both still get installed: tsx
# and prisma are listed under dependencies, and TypeScript comes as a peer of Prisma's client.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
# Its postinstall generates the Prisma client into src/generated/prisma, which the build compiles into dist/.
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the only one is the project's postinstall (Prisma's generator, a development tool), and the
# client it makes is already compiled in dist/src/generated/prisma.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
# The endpoint (/healthz, /readyz, /metrics, /queues, the status page) is on in the image. It listens on loopback
# unless HTTP_HOST says otherwise, and another address requires HTTP_TOKEN: compose and deploy/kubernetes set both.
ENV HTTP_PORT=8080
EXPOSE 8080
# Healthy means ready: Postgres and Redis answer and the migrations are applied (they run before the endpoint
# opens, hence the start period). The image has node, not curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.HTTP_PORT+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same Node flags as `npm start`: a bounded heap keeps each process under 300 MB (see bench/README.md).
# Node itself, not npm: npm and the shell of its script would not pass SIGTERM on, and a stopped worker must let
# its page commit. One role: this command with `--role worker` or `--role scheduler` added, as compose does.
CMD ["node", "--max-old-space-size=192", "dist/src/cli/main.js", "start"]
