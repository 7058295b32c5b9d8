/** The simulator's kafkajs client, from the same Kafka settings as the daemon's (config `kafka.*`). */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig as KafkajsConfig, type SASLOptions } from 'kafkajs';
import type { KafkaConfig } from '../config/index.js';
import { TOPIC_PARTITIONS } from '../daemon/kafka-client.js';

/** The topics the simulator writes and reads (the daemon's `kafka.topics`). */
export type SimulatorTopics = Pick<
  KafkaConfig['topics'],
  'candidates' | 'feedback' | 'labelingRequests' | 'modelVersions'
>;

/** Kafka settings of the simulator: the daemon's, with TLS and SASL optional. */
export interface SimulatorKafkaOptions {
  brokers: string[];
  /** Default 'acft-simulator'. */
  clientId?: string;
  topics: SimulatorTopics;
  ssl?: KafkaConfig['ssl'];
  sasl?: KafkaConfig['sasl'];
  /** kafkajs retries of a failed request. Default 8. */
  retries?: number;
}

/** A kafkajs client, with kafkajs' own logging off. */
export function createKafkaClient(options: SimulatorKafkaOptions): Kafka {
  const ssl = options.ssl;
  const config: KafkajsConfig = {
    clientId: options.clientId ?? 'acft-simulator',
    brokers: options.brokers,
    retry: { retries: options.retries ?? 8, initialRetryTime: 300 },
    // kafkajs logs every retried request as an error (e.g. while a fresh broker elects a group
    // coordinator): failures that matter surface as errors and consumer crashes, reported by the simulator.
    logLevel: logLevel.NOTHING,
  };
  if (ssl?.enabled === true) {
    config.ssl = {
      rejectUnauthorized: ssl.rejectUnauthorized,
      ...(ssl.caPath !== undefined ? { ca: [readFileSync(ssl.caPath, 'utf8')] } : {}),
      ...(ssl.certPath !== undefined ? { cert: readFileSync(ssl.certPath, 'utf8') } : {}),
      ...(ssl.keyPath !== undefined ? { key: readFileSync(ssl.keyPath, 'utf8') } : {}),
    };
  }
  if (options.sasl !== undefined) {
    const { mechanism, username, password } = options.sasl;
    // The config's mechanisms are kafkajs' names; kafkajs types each mechanism apart.
    config.sasl = { mechanism, username, password } as SASLOptions;
  }
  return new Kafka(config);
}

/** Thrown when topics the simulator needs are missing and it may not create them. */
export class MissingTopicsError extends Error {
  readonly code = 'TOPICS_MISSING';
  /** Retrying works once someone has created them. */
  readonly retryable = true;
  override readonly name = 'MissingTopicsError';
}

/**
 * Checks that the topics exist; creates the missing ones when `create` is set, as the daemon
 * would (its partition counts, the brokers' default replication factor).
 *
 * @returns the topics created.
 * @throws MissingTopicsError when some are missing and `create` is not set.
 */
export async function ensureTopics(
  kafka: Kafka,
  topics: SimulatorTopics,
  create: boolean,
): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const keys = ['candidates', 'feedback', 'labelingRequests', 'modelVersions'] as const;
    const missing = keys.filter((k) => !existing.has(topics[k]));
    const names = missing.map((k) => topics[k]);
    if (missing.length === 0) return [];
    if (!create) {
      throw new MissingTopicsError(
        `Topic${missing.length > 1 ? 's' : ''} ${names.join(', ')} missing on the brokers: create ${missing.length > 1 ? 'them' : 'it'}, start the daemon first, or let the simulator create ${missing.length > 1 ? 'them' : 'it'} (--create-topics).`,
      );
    }
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((k) => ({
        topic: topics[k],
        numPartitions: TOPIC_PARTITIONS[k],
        replicationFactor: -1,
      })),
    });
    return names;
  } finally {
    await admin.disconnect();
  }
}
