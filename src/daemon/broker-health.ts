/**
 * Whether the Kafka brokers answer, as the daemon's readiness and `acft_broker_connected` report it.
 *
 * kafkajs says little when a broker goes away: a refused connection emits no consumer event, and
 * `REQUEST_TIMEOUT` fires only for a request in flight once its timeout (30 s) has passed, so the
 * daemon used to stay "ready" for a minute of outage. Here every answer counts as evidence that the
 * brokers are up (a fetch, a heartbeat, a send confirmed), every failure as evidence they are down
 * (a consumer crash, a request timeout, a send that failed), and when no answer came for
 * `staleAfterMs` an active probe (a metadata request with a short timeout) decides. An outage is
 * one interval, from its first failure to the first answer after it: it is logged when it starts
 * and when it ends, with its length.
 *
 * {@link BrokerHealth} is the pure state; {@link BrokerProbe} the kafkajs adapter of the probe.
 */
import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';

/** What changed with an observation: an outage began or ended (null: nothing changed). */
export type HealthChange =
  | { readonly type: 'outage-started'; readonly atMs: number; readonly cause: string }
  | { readonly type: 'outage-ended'; readonly atMs: number; readonly durationMs: number }
  | null;

/** The brokers' health as the daemon sees it. */
export class BrokerHealth {
  private lastAnswerMs: number;
  private downSinceMs: number | null = null;

  constructor(
    now: number,
    /** No answer for this long (ms) calls for a probe. */
    readonly staleAfterMs: number,
  ) {
    this.lastAnswerMs = now;
  }

  /** A broker answered (fetch, heartbeat, confirmed send, probe). */
  answered(now: number): HealthChange {
    this.lastAnswerMs = Math.max(this.lastAnswerMs, now);
    if (this.downSinceMs === null) return null;
    const change = { type: 'outage-ended', atMs: now, durationMs: now - this.downSinceMs } as const;
    this.downSinceMs = null;
    return change;
  }

  /** A broker request failed, or the probe did. */
  failed(now: number, cause: string): HealthChange {
    if (this.downSinceMs !== null) return null;
    this.downSinceMs = now;
    return { type: 'outage-started', atMs: now, cause };
  }

  /** Whether no answer came for `staleAfterMs`: time to probe. */
  needsProbe(now: number): boolean {
    return now - this.lastAnswerMs >= this.staleAfterMs;
  }

  /** When the current outage began (null: the brokers answer). */
  get downSince(): number | null {
    return this.downSinceMs;
  }
}

/**
 * Asks the brokers for their metadata with a short connection and request timeout and no retries:
 * resolves when they answer, rejects when they do not. One admin client, kept between probes.
 */
export class BrokerProbe {
  private readonly admin: Admin;
  private connected = false;
  private inFlight?: Promise<void>;

  constructor(options: KafkaConfig, timeoutMs: number, retries = 0) {
    this.admin = new Kafka({
      ...options,
      clientId: `${options.clientId ?? 'acft'}-probe`,
      logLevel: logLevel.NOTHING,
      connectionTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      retry: { retries, initialRetryTime: 500 },
    }).admin();
  }

  /** Resolves when the brokers answered; a probe still under way is shared, not doubled. */
  probe(): Promise<void> {
    this.inFlight ??= this.ask().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async ask(): Promise<void> {
    try {
      if (!this.connected) {
        await this.admin.connect();
        this.connected = true;
      }
      await this.admin.describeCluster();
    } catch (error) {
      this.connected = false;
      await this.admin.disconnect().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.connected = false;
    await this.admin.disconnect().catch(() => undefined);
  }
}

/**
 * Whether an error is the brokers' doing (a connection refused or closed, a request timed out,
 * retries exhausted on those): the root of its cause chain is a kafkajs error. An error of the
 * daemon's own (thrown by its batch handler) is not.
 */
export function isBrokerError(error: unknown): boolean {
  let at: unknown = error;
  for (let depth = 0; depth < 8; depth++) {
    if (!(at instanceof Error)) return false;
    const next = (at as { originalError?: unknown }).originalError ?? at.cause;
    if (!(next instanceof Error)) return at.name.startsWith('KafkaJS');
    at = next;
  }
  return false;
}
