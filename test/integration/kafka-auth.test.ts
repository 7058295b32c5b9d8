/**
 * Authentication against a real broker with a SASL_PLAINTEXT (PLAIN) listener (issue 14: a SASL
 * mismatch used to be reported as "brokers do not answer ... start one"):
 *
 * - the right credentials: the daemon starts;
 * - a wrong password: it exits 1 and says the brokers refused its authentication, naming the
 *   settings to check, never the password;
 * - no SASL at all against that listener: it says the listener likely wants TLS or SASL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/kafka/embedded-broker.js';
import { DaemonProcess } from '../support/daemon-process.js';
import { daemonTopicEnv, uniqueTopic } from '../support/kafka.js';

const PASSWORD = 'correct-horse-battery';
let broker: EmbeddedBroker;
let dir: string;

before(async () => {
  broker = await startEmbeddedBroker({ saslPlainUsers: { acft: PASSWORD } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'acft-it-auth-'));
});
after(async () => {
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

function daemon(sasl: Record<string, string>): DaemonProcess {
  const name = uniqueTopic('auth');
  return new DaemonProcess({
    ACFT_KAFKA_BROKERS: broker.saslBrokers!.join(','),
    ACFT_KAFKA_GROUP_ID: `${name}-group`,
    ...daemonTopicEnv(name),
    ACFT_MODEL_STORE_DIR: path.join(dir, name, 'models'),
    ACFT_STATE_CHECKPOINT_DIR: path.join(dir, name, 'state'),
    ACFT_HTTP_PORT: '0',
    ...sasl,
  });
}

describe('SASL against a real broker', { timeout: 300_000 }, () => {
  it('starts with the right credentials', async () => {
    const d = daemon({
      ACFT_KAFKA_SASL_MECHANISM: 'plain',
      ACFT_KAFKA_SASL_USERNAME: 'acft',
      ACFT_KAFKA_SASL_PASSWORD: PASSWORD,
    });
    await d.waitForEvent('started');
    assert.equal((await d.stop()).code, 0);
  });

  it('says that the brokers refused its credentials, naming the settings and not the password', async () => {
    const d = daemon({
      ACFT_KAFKA_SASL_MECHANISM: 'plain',
      ACFT_KAFKA_SASL_USERNAME: 'acft',
      ACFT_KAFKA_SASL_PASSWORD: 'wrong-password-123',
    });
    const exit = await d.exited;
    assert.equal(exit.code, 1);
    const out = `${d.stderr.join('')}\n${d.lines.map((l) => JSON.stringify(l)).join('\n')}`;
    assert.match(out, /refused acft's authentication/);
    assert.match(out, /ACFT_KAFKA_SASL_PASSWORD/);
    assert.doesNotMatch(out, /start one/);
    assert.doesNotMatch(out, /wrong-password-123/);
  });

  it('says that a SASL listener wants SASL when acft has none', async () => {
    const d = daemon({});
    const exit = await d.exited;
    assert.equal(exit.code, 1);
    assert.match(d.stderr.join(''), /likely wants TLS or SASL/);
  });
});
