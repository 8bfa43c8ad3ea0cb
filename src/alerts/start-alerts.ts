/**
 * The alert loop of a scheduler process, when ALERT_WEBHOOK_URL is set: the status it watches is the one
 * `npm run status`, the page and the metrics show (readStatus).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import { readStatus } from '../status/read-status.ts';
import { startAlertLoop, type AlertLoop } from './alert-loop.ts';
import { createWebhookSender } from './webhook.ts';

export function startAlerts(deps: { config: Config; db: Db; redis: Redis; logger: Logger }): AlertLoop | null {
  const { config, db, redis, logger } = deps;
  if (config.alerts.webhookUrl === null) return null;
  logger.info('alerts: a webhook is set; the health of each source is checked every 30 s');
  return startAlertLoop({
    redis,
    prefix: config.jobs.prefix,
    readStatus: () => readStatus({ db, redis, config }),
    send: createWebhookSender({ url: config.alerts.webhookUrl }),
    rules: { failingRuns: config.alerts.failingRuns },
    logger,
  });
}
