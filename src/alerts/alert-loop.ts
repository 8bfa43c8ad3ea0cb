/**
 * Every ~30 s in the scheduler role: reads the status, and posts an alert when a source's health changed — it starts
 * failing or recovers, goes stale or fresh again, crosses 80 % of its daily budget or falls back under it. Once per
 * change, not per check: the health last sent is kept in Redis (`<prefix>:alerts:<source>`), and taken over with a
 * compare-and-set before anything is sent, so several schedulers, or one restarted, never send the same change twice.
 * An alert that could not be delivered is given back (the stored health reverts), so the next check tries again.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { maskPersonalData, type Logger } from '../logger.ts';
import type { SourceStatus, StatusReport } from '../status/types.ts';
import {
  eventsBetween,
  healthOf,
  parseHealth,
  summarize,
  TRANSITIONS,
  type AlertEvent,
  type HealthRules,
  type SourceHealth,
} from './source-health.ts';
import type { SendWebhook } from './webhook.ts';

export interface AlertLoopOptions {
  redis: Redis;
  /** QUEUE_PREFIX: each installation on a shared Redis keeps its own alert state, and alerts name it. */
  prefix: string;
  readStatus: () => Promise<StatusReport>;
  send: SendWebhook;
  rules: HealthRules;
  logger: Logger;
  /** Between two checks, in ms (default 30 s). */
  intervalMs?: number;
}

export interface AlertLoop {
  /** One check now (a check already under way is waited for instead of starting another). */
  evaluate(): Promise<void>;
  /** Stops checking; an alert being sent is abandoned (and sent again by the next scheduler to check). */
  stop(): Promise<void>;
}

// KEYS: state. ARGV: expected ('' = absent), next. Sets next only when the stored value is still the expected one.
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

/** The alert as posted. `text` is what chat webhooks (Slack, Mattermost, Teams workflows) display. */
export interface AlertPayload {
  /** The same on every retry of one alert, so a receiver can drop a duplicate delivery. */
  id: string;
  event: AlertEvent;
  source: string;
  /** QUEUE_PREFIX of the installation that sent it. */
  installation: string;
  at: string;
  text: string;
  state: SourceStatus['state'];
  consecutiveFailures: number;
  lastError: { at: string; message: string } | null;
  lastSuccessAt: string | null;
  freshnessSeconds: number | null;
  budget: SourceStatus['budget'];
}

export function alertPayload(
  event: AlertEvent,
  status: SourceStatus,
  context: { prefix: string; at: string; rules: HealthRules },
): AlertPayload {
  return {
    id: randomUUID(),
    event,
    source: status.source,
    installation: context.prefix,
    at: context.at,
    // Error texts are scrubbed when the ledger stores them; masked again here, since this leaves for another system.
    text: maskPersonalData(`voucher-sync (${context.prefix}): ${summarize(event, status, context.rules)}`),
    state: status.state,
    consecutiveFailures: status.consecutiveFailures,
    lastError: status.lastError && { at: status.lastError.at, message: maskPersonalData(status.lastError.message) },
    lastSuccessAt: status.lastSuccessAt,
    freshnessSeconds: status.freshnessSeconds,
    budget: status.budget,
  };
}

export function startAlertLoop(options: AlertLoopOptions): AlertLoop {
  const { redis, prefix, rules, send, intervalMs = 30_000 } = options;
  const logger = options.logger.child({ component: 'alerts' });
  const controller = new AbortController();
  const compareAndSet = (key: string, expected: string | null, next: string) =>
    redis.eval(COMPARE_AND_SET, 1, key, expected ?? '', next).then((set) => set === 1);

  async function check(status: SourceStatus, at: string): Promise<void> {
    const key = `${prefix}:alerts:${status.source}`;
    const stored = await redis.get(key);
    const before = parseHealth(stored);
    const after = healthOf(status, rules);
    const events = eventsBetween(before, after);
    if (events.length === 0) return;
    const next = JSON.stringify(after);
    // Another scheduler saw the same change first: it sends the alert.
    if (!(await compareAndSet(key, stored, next))) return;
    const delivered: SourceHealth = { ...before };
    for (const event of events) {
      const { flag } = TRANSITIONS.find((t) => t.on === event || t.off === event)!;
      try {
        await send(alertPayload(event, status, { prefix, at, rules }), controller.signal);
        delivered[flag] = after[flag];
        logger.info({ source: status.source, event }, `alert sent: ${status.source} ${event}`);
      } catch (error) {
        logger.warn(
          { source: status.source, event, reason: (error as Error).message },
          'could not send the alert; the next check tries again',
        );
      }
    }
    const kept = JSON.stringify(delivered);
    if (kept !== next) await compareAndSet(key, next, kept);
  }

  async function evaluateOnce(): Promise<void> {
    let report: StatusReport;
    try {
      report = await options.readStatus();
    } catch (error) {
      logger.warn({ err: error }, 'could not read the status for alerts; the next check tries again');
      return;
    }
    const results = await Promise.allSettled(
      report.sources.filter((s) => s.configured).map((s) => check(s, report.at)),
    );
    for (const result of results)
      if (result.status === 'rejected')
        logger.warn(
          { err: result.reason as unknown },
          'could not check a source for alerts; the next check tries again',
        );
  }

  let running: Promise<void> | undefined;
  const evaluate = () => {
    if (controller.signal.aborted) return Promise.resolve();
    running ??= evaluateOnce().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void evaluate(), intervalMs);
  timer.unref();
  void evaluate();

  return {
    evaluate,
    async stop() {
      clearInterval(timer);
      controller.abort();
      await running;
    },
  };
}
