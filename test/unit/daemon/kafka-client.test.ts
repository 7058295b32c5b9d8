import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { kafkaOptions } from '../../../src/daemon/kafka-client.js';

void describe('kafkaOptions: SASL and TLS as kafkajs takes them', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'acft-tls-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(path.join(dir, f), `-----${f}-----\n`);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  void it('leaves TLS and SASL off by default', () => {
    const o = kafkaOptions(loadConfig({ env: {} }).kafka);
    assert.equal(o.ssl, undefined);
    assert.equal(o.sasl, undefined);
  });

  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
    void it(`passes SASL ${mechanism} with its credentials`, () => {
      const o = kafkaOptions(
        loadConfig({
          env: {
            ACFT_KAFKA_SASL_MECHANISM: mechanism,
            ACFT_KAFKA_SASL_USERNAME: 'acft',
            ACFT_KAFKA_SASL_PASSWORD: 's3cret',
          },
        }).kafka,
      );
      assert.deepEqual(o.sasl, { mechanism, username: 'acft', password: 's3cret' });
    });
  }

  void it('reads the CA, certificate and key files for mutual TLS', () => {
    const o = kafkaOptions(
      loadConfig({
        env: {
          ACFT_KAFKA_SSL_CA_PATH: path.join(dir, 'ca.pem'),
          ACFT_KAFKA_SSL_CERT_PATH: path.join(dir, 'cert.pem'),
          ACFT_KAFKA_SSL_KEY_PATH: path.join(dir, 'key.pem'),
          ACFT_KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
        },
      }).kafka,
    );
    assert.deepEqual(o.ssl, {
      rejectUnauthorized: false,
      ca: ['-----ca.pem-----\n'],
      cert: '-----cert.pem-----\n',
      key: '-----key.pem-----\n',
    });
  });

  void it('fails at start-up, naming the file, when a TLS file is missing', () => {
    const missing = path.join(dir, 'nope.pem');
    assert.throws(
      () => kafkaOptions(loadConfig({ env: { ACFT_KAFKA_SSL_CA_PATH: missing } }).kafka),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.message.includes(missing),
    );
  });

  void it('rejects an unknown SASL mechanism at load', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {
            ACFT_KAFKA_SASL_MECHANISM: 'gssapi',
            ACFT_KAFKA_SASL_USERNAME: 'u',
            ACFT_KAFKA_SASL_PASSWORD: 'p',
          },
        }),
      /ACFT_KAFKA_SASL_MECHANISM/,
    );
  });
});

void describe('brokersError: what the daemon says when its brokers cannot be used', () => {
  void it('tells refused credentials from brokers that do not answer', async () => {
    const { brokersError, BrokersRefusedAuthError, BrokersUnreachableError } =
      await import('../../../src/daemon/kafka-client.js');
    const sasl = Object.assign(
      new Error('SASL PLAIN authentication failed: Authentication failed: Invalid username or password'),
      { name: 'KafkaJSSASLAuthenticationError' },
    );
    const refused = brokersError(['b:9093'], sasl);
    assert.ok(refused instanceof BrokersRefusedAuthError);
    assert.match(refused.message, /refused acft's authentication/);
    assert.match(refused.message, /ACFT_KAFKA_SASL_USERNAME/);
    assert.doesNotMatch(refused.message, /start one/);
    const wrapped = Object.assign(new Error('retries exhausted'), { originalError: sasl });
    assert.ok(brokersError(['b:9093'], wrapped) instanceof BrokersRefusedAuthError);
    const refusedConnection = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9'), {
      name: 'KafkaJSConnectionError',
    });
    const gone = brokersError(['127.0.0.1:9'], refusedConnection);
    assert.ok(gone instanceof BrokersUnreachableError);
    assert.match(gone.message, /do not answer/);
  });
});

void describe("kafkaLogCreator: kafkajs's own log into the daemon's", () => {
  void it('keeps its level, namespace, message and where/why fields, never a message payload', async () => {
    const { kafkaLogCreator } = await import('../../../src/daemon/kafka-client.js');
    const { pino } = await import('pino');
    const kafkajs = (await import('kafkajs')).default;
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'debug' },
      { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    );
    const write = kafkaLogCreator(log)(kafkajs.logLevel.WARN);
    write({
      namespace: 'Connection',
      level: kafkajs.logLevel.ERROR,
      label: 'ERROR',
      log: {
        timestamp: 't',
        message: 'Connection error',
        broker: 'b:9092',
        error: 'ECONNREFUSED',
        payload: 'secret-bytes',
      },
    });
    write({
      namespace: 'Runner',
      level: kafkajs.logLevel.WARN,
      label: 'WARN',
      log: { timestamp: 't', message: 'rebalancing' },
    });
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!['level'], 50);
    assert.equal(lines[0]!['event'], 'kafkajs');
    assert.equal(lines[0]!['component'], 'kafkajs');
    assert.equal(lines[0]!['broker'], 'b:9092');
    assert.equal(lines[0]!['reason'], 'ECONNREFUSED');
    assert.equal(lines[0]!['msg'], 'Connection error');
    assert.equal(JSON.stringify(lines).includes('secret-bytes'), false);
    assert.equal(lines[1]!['level'], 40);
  });
});

void describe('isMembershipRefusal: the group refusing a member it no longer knows', () => {
  void it("tells kafkajs's wrapped UNKNOWN_MEMBER_ID and ILLEGAL_GENERATION from failures", async () => {
    const { isMembershipRefusal } = await import('../../../src/daemon/kafka-client.js');
    const kafkajs = (await import('kafkajs')).default;
    const protocol = (type: string) =>
      new kafkajs.KafkaJSProtocolError({ message: type, type, code: 25, retriable: false } as never);
    // As kafkajs's retrier rejects: the broker's answer as the cause of a non-retriable error.
    const wrapped = (e: Error) =>
      new (kafkajs.KafkaJSNonRetriableError as new (e: Error, o: { cause: Error }) => Error)(e, { cause: e });
    assert.equal(isMembershipRefusal(wrapped(protocol('UNKNOWN_MEMBER_ID'))), true);
    assert.equal(isMembershipRefusal(protocol('ILLEGAL_GENERATION')), true);
    assert.equal(isMembershipRefusal(wrapped(protocol('REBALANCE_IN_PROGRESS'))), true);
    assert.equal(isMembershipRefusal(wrapped(protocol('NOT_COORDINATOR'))), false);
    assert.equal(isMembershipRefusal(new kafkajs.KafkaJSConnectionError('ECONNREFUSED')), false);
    assert.equal(isMembershipRefusal(null), false);
  });
});
