/** The kafkajs client and topics of the daemon, built from its configuration. */
import { readFileSync } from 'node:fs';
import {
  Kafka,
  logLevel,
  type Consumer,
  type KafkaConfig,
  type LogEntry,
  type SASLOptions,
  type logCreator,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { PartitionOffset } from '../core/offsets.js';
import { BrokerProbe } from './broker-health.js';
import { CommitRefusedError } from './ports.js';

/**
 * kafkajs options from the `kafka` section (TLS files read here, at start-up). With `log`, kafkajs's
 * own warnings and errors go to the daemon's log (`event: 'kafkajs'`), else nowhere.
 */
export function kafkaOptions(config: Config['kafka'], log?: Logger): KafkaConfig {
  const options: KafkaConfig = {
    clientId: config.clientId,
    brokers: [...config.brokers],
    logLevel: log === undefined ? logLevel.NOTHING : logLevel.WARN,
    ...(log === undefined ? {} : { logCreator: kafkaLogCreator(log) }),
    retry: {
      retries: config.retry.retries,
      initialRetryTime: config.retry.initialRetryTimeMs,
      maxRetryTime: config.retry.maxRetryTimeMs,
    },
  };
  if (config.ssl.enabled) {
    options.ssl = {
      rejectUnauthorized: config.ssl.rejectUnauthorized,
      ...(config.ssl.caPath ? { ca: [readFileSync(config.ssl.caPath, 'utf8')] } : {}),
      ...(config.ssl.certPath ? { cert: readFileSync(config.ssl.certPath, 'utf8') } : {}),
      ...(config.ssl.keyPath ? { key: readFileSync(config.ssl.keyPath, 'utf8') } : {}),
    };
  }
  if (config.sasl) {
    options.sasl = {
      mechanism: config.sasl.mechanism,
      username: config.sasl.username,
      password: config.sasl.password,
    } as SASLOptions;
  }
  return options;
}

export function createKafka(config: Config['kafka'], log?: Logger): Kafka {
  return new Kafka(kafkaOptions(config, log));
}

/**
 * kafkajs's log, into pino: its level, namespace and message, and of its extra fields only those
 * that say where (broker, group, topic) and why (its error's text, as `reason`); never a message or
 * its payload.
 */
export function kafkaLogCreator(log: Logger): logCreator {
  const child = log.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }: LogEntry): void => {
      const { message, broker, groupId, topic, error } = entry as Record<string, unknown> & {
        message: string;
      };
      const fields = {
        event: 'kafkajs',
        namespace,
        ...(typeof broker === 'string' ? { broker } : {}),
        ...(typeof groupId === 'string' ? { groupId } : {}),
        ...(typeof topic === 'string' ? { topic } : {}),
        // Not `error`: the daemon's logger serializes that key as an Error (kafkajs gives a string).
        ...(typeof error === 'string' ? { reason: error } : {}),
      };
      if (level === logLevel.ERROR) child.error(fields, message);
      else if (level === logLevel.WARN) child.warn(fields, message);
      else if (level === logLevel.INFO) child.info(fields, message);
      else child.debug(fields, message);
    };
}

/** Partitions the daemon gives the topics it creates (existing topics are left as they are). */
export const TOPIC_PARTITIONS = {
  candidates: 3,
  feedback: 3,
  labelingRequests: 1,
  modelVersions: 1,
  deadLetter: 1,
  coordination: 1,
} as const;

/** Topic settings of the topics the daemon creates. */
const TOPIC_CONFIG: Partial<Record<keyof Config['kafka']['topics'], { name: string; value: string }[]>> = {
  // Shortlists are only worth their latest few seconds.
  coordination: [{ name: 'retention.ms', value: String(3_600_000) }],
  // One entry per candidate ever requested or labeled: its latest state, with its pixels.
  ledger: [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'max.message.bytes', value: String(4 * 1024 * 1024) },
  ],
};

/** Partitions of the ledger topic the daemon creates (it is read in full by every instance). */
export const LEDGER_PARTITIONS = 3;

/**
 * Creates any missing topic of the daemon and waits for their leaders; with `scaleOut`, also the
 * compacted ledger. A topic another instance created meanwhile is fine.
 */
export async function ensureTopics(
  kafka: Kafka,
  topics: Config['kafka']['topics'],
  options: { scaleOut?: boolean } = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted: [keyof Config['kafka']['topics'], number][] = [
      ...(Object.entries(TOPIC_PARTITIONS) as [keyof typeof TOPIC_PARTITIONS, number][]),
      ...(options.scaleOut === true ? [['ledger', LEDGER_PARTITIONS] as ['ledger', number]] : []),
    ];
    const missing = wanted
      .filter(([k]) => !existing.has(topics[k]))
      .map(([k, numPartitions]) => ({
        topic: topics[k],
        numPartitions,
        replicationFactor: -1,
        ...(TOPIC_CONFIG[k] ? { configEntries: TOPIC_CONFIG[k] } : {}),
      }));
    if (missing.length > 0) {
      await admin.createTopics({ topics: missing, waitForLeaders: true }).catch((error: unknown) => {
        // Two instances starting together both see the topic missing; one of them wins.
        if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
      });
    }
  } finally {
    await admin.disconnect();
  }
}

/** Thrown at start when candidates and feedback are not co-partitioned (scale-out needs it). */
export class TopicLayoutError extends Error {
  readonly code = 'TOPIC_LAYOUT';
  readonly retryable = false;
  override readonly name = 'TopicLayoutError';
}

/**
 * Scale-out routes a candidate and its feedback to the same instance by partition number: both
 * topics must have the same number of partitions (and be keyed by candidate id).
 */
export async function checkCoPartitioned(kafka: Kafka, topics: readonly string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics: meta } = await admin.fetchTopicMetadata({ topics: [...topics] });
    const counts = meta.map((t) => `${t.name}: ${t.partitions.length}`);
    if (new Set(meta.map((t) => t.partitions.length)).size > 1) {
      throw new TopicLayoutError(
        `scale-out needs the same number of partitions on ${topics.join(' and ')} (${counts.join(', ')}): add partitions to the smaller one`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Connects once with a short retry budget and lists the topics: fails in seconds, not after the
 * minutes of retries a running client is given, when the brokers do not answer.
 */
export async function probeBrokers(options: KafkaConfig): Promise<void> {
  const probe = new BrokerProbe(options, 3_000, 2);
  try {
    await probe.probe();
  } finally {
    await probe.close();
  }
}

/** The one-sentence error of a daemon whose brokers do not answer. */
export class BrokersUnreachableError extends Error {
  readonly code = 'BROKERS_UNREACHABLE';
  readonly retryable = true;
  constructor(brokers: readonly string[], cause: unknown) {
    super(
      isClosedByPeer(cause)
        ? `The Kafka brokers ${brokers.join(',')} closed the connection without answering (${firstLine(cause)}): their listener likely wants TLS or SASL, which acft has off: set ACFT_KAFKA_SSL and ACFT_KAFKA_SASL_MECHANISM, ACFT_KAFKA_SASL_USERNAME and ACFT_KAFKA_SASL_PASSWORD as the listener needs.`
        : `The Kafka brokers ${brokers.join(',')} do not answer (${firstLine(cause)}): start one (npm run kafka:start) or set ACFT_KAFKA_BROKERS to brokers reachable from here.`,
      { cause },
    );
    this.name = 'BrokersUnreachableError';
  }
}

/** A connection the broker's side closed (it was reached, and would not speak acft's protocol). */
function isClosedByPeer(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 5) return false;
  if (error.name === 'KafkaJSConnectionClosedError') return true;
  return isClosedByPeer(error.cause ?? (error as { originalError?: unknown }).originalError, depth + 1);
}

/** The one-sentence error of a daemon whose brokers answer but refuse its credentials. */
export class BrokersRefusedAuthError extends Error {
  readonly code = 'BROKERS_REFUSED_AUTH';
  readonly retryable = false;
  constructor(brokers: readonly string[], cause: unknown) {
    super(
      `The Kafka brokers ${brokers.join(',')} refused acft's authentication (${firstLine(cause)}): check ACFT_KAFKA_SASL_MECHANISM, ACFT_KAFKA_SASL_USERNAME and ACFT_KAFKA_SASL_PASSWORD against the listener's SASL settings (and ACFT_KAFKA_SSL_ENABLED against its protocol).`,
      { cause },
    );
    this.name = 'BrokersRefusedAuthError';
  }
}

function firstLine(cause: unknown): string {
  return cause instanceof Error ? (cause.message.split('\n')[0] ?? '') : String(cause);
}

/** Whether an error (or one of its causes) is the brokers refusing authentication. */
function isAuthFailure(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 5) return false;
  const type = (error as { type?: unknown }).type;
  if (
    error.name === 'KafkaJSSASLAuthenticationError' ||
    type === 'SASL_AUTHENTICATION_FAILED' ||
    type === 'ILLEGAL_SASL_STATE' ||
    type === 'UNSUPPORTED_SASL_MECHANISM' ||
    /\bSASL\b|authenticat/i.test(error.message)
  )
    return true;
  return isAuthFailure(error.cause ?? (error as { originalError?: unknown }).originalError, depth + 1);
}

/** The error a daemon reports when its brokers cannot be used: refused credentials, or no answer. */
export function brokersError(brokers: readonly string[], cause: unknown): Error {
  return isAuthFailure(cause)
    ? new BrokersRefusedAuthError(brokers, cause)
    : new BrokersUnreachableError(brokers, cause);
}

/** The group's answers to a member it no longer knows under its generation (kafkajs error types). */
const MEMBERSHIP_REFUSALS = new Set([
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'REBALANCE_IN_PROGRESS',
  'FENCED_INSTANCE_ID',
]);

/**
 * Whether kafkajs's error is the group refusing a member it no longer knows (not a failure). Its
 * retrier wraps the broker's answer (a protocol error with a `type`) as the `cause` of another.
 */
export function isMembershipRefusal(error: unknown): boolean {
  for (let e = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; depth++) {
    const { type, cause } = e as { type?: unknown; cause?: unknown };
    if (typeof type === 'string' && MEMBERSHIP_REFUSALS.has(type)) return true;
    e = cause;
  }
  return false;
}

/** Thrown when the broker did not take an offset commit that kafkajs reported as done. */
export class CommitNotConfirmedError extends Error {
  readonly code = 'COMMIT_NOT_CONFIRMED';
  readonly retryable = true;
  override readonly name = 'CommitNotConfirmedError';
}

/**
 * Commits offsets for the consumer's group and resolves only once the broker acknowledged every one
 * of them. kafkajs's `commitOffsets` resolves without sending anything, and swallows the error of a
 * commit under way, whenever its runner is not running (a consumer restarting after a crash or a
 * broker outage, or stopping); a caller that took that for a commit recorded offsets the broker
 * never had. The broker's acknowledgement is kafkajs's `COMMIT_OFFSETS` instrumentation event,
 * emitted synchronously inside the call when, and only when, the coordinator answered.
 *
 * @throws CommitNotConfirmedError when some offset was not acknowledged.
 */
export async function commitConfirmed(
  consumer: Consumer,
  commits: readonly PartitionOffset[],
): Promise<void> {
  if (commits.length === 0) return;
  const acknowledged = new Set<string>();
  const tp = (topic: string, partition: number, offset: string) =>
    `${topic}\u0000${partition}\u0000${offset}`;
  const stop = consumer.on(consumer.events.COMMIT_OFFSETS, (event) => {
    for (const t of event.payload.topics)
      for (const p of t.partitions) acknowledged.add(tp(t.topic, p.partition, String(p.offset)));
  });
  try {
    await consumer.commitOffsets(
      commits.map((c) => ({ topic: c.topic, partition: c.partition, offset: String(c.offset) })),
    );
  } catch (error) {
    throw isMembershipRefusal(error)
      ? new CommitRefusedError(`the group refused the commit: ${(error as Error).message}`, { cause: error })
      : error;
  } finally {
    stop();
  }
  const missing = commits.filter((c) => !acknowledged.has(tp(c.topic, c.partition, String(c.offset))));
  if (missing.length > 0)
    throw new CommitNotConfirmedError(
      `the broker did not acknowledge the commit of ${missing.map((c) => `${c.topic}[${c.partition}]@${c.offset}`).join(', ')} (the consumer is not running: restarting or stopping)`,
    );
}
