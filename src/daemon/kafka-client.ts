/** The kafkajs client and topics of the daemon, built from its configuration. */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { Config } from '../config/index.js';

/** kafkajs options from the `kafka` section (TLS files read here, at start-up). */
export function kafkaOptions(config: Config['kafka']): KafkaConfig {
  const options: KafkaConfig = {
    clientId: config.clientId,
    brokers: [...config.brokers],
    logLevel: logLevel.NOTHING,
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

export function createKafka(config: Config['kafka']): Kafka {
  return new Kafka(kafkaOptions(config));
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

/** Creates any missing topic of the daemon and waits for their leaders. */
export async function ensureTopics(kafka: Kafka, topics: Config['kafka']['topics']): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = (Object.keys(TOPIC_PARTITIONS) as (keyof typeof TOPIC_PARTITIONS)[])
      .filter((k) => !existing.has(topics[k]))
      .map((k) => ({ topic: topics[k], numPartitions: TOPIC_PARTITIONS[k], replicationFactor: -1 }));
    if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Connects once with a short retry budget and lists the topics: fails in seconds, not after the
 * minutes of retries a running client is given, when the brokers do not answer.
 */
export async function probeBrokers(options: KafkaConfig): Promise<void> {
  const admin = new Kafka({
    ...options,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 2, initialRetryTime: 500 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** The one-sentence error of a daemon whose brokers do not answer. */
export class BrokersUnreachableError extends Error {
  readonly code = 'BROKERS_UNREACHABLE';
  readonly retryable = true;
  constructor(brokers: readonly string[], cause: unknown) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super(
      `The Kafka brokers ${brokers.join(',')} do not answer (${why}): start one (npm run kafka:start) or set ACFT_KAFKA_BROKERS to brokers reachable from here.`,
      { cause },
    );
    this.name = 'BrokersUnreachableError';
  }
}
