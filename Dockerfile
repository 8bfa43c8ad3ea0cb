FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund
COPY . .
# Compiled once here: the service runs JavaScript, not TypeScript through a loader (faster to start, less memory).
RUN npm run build
USER node
# The endpoint (/healthz, /readyz, /metrics, /queues, the status page) is on in the image. It listens on loopback
# unless HTTP_HOST says otherwise, and another address requires HTTP_TOKEN: compose and deploy/kubernetes set both.
ENV HTTP_PORT=8080
EXPOSE 8080
# Healthy means ready: Postgres and Redis answer and the migrations are applied (they run before the endpoint
# opens, hence the start period). The image has node, not curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.HTTP_PORT+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same Node flags as `npm start`: a bounded heap keeps each process near 250 MB (see README, Performance).
# Node itself, not npm: npm and the shell of its script would not pass SIGTERM on, and a stopped worker must let
# its page commit. One role: this command with `--role worker` or `--role scheduler` added, as compose does.
CMD ["node", "--max-old-space-size=192", "dist/src/cli/main.js", "start"]
