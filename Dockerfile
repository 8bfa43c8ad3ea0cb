FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund
COPY . .
USER node
# The same Node flags as `npm start`: a bounded heap keeps each process near 250 MB (see README, Performance).
CMD ["node", "--max-old-space-size=192", "--import", "tsx", "src/cli/start.ts"]
