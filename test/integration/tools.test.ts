/**
 * The tools around the daemon when their broker goes away (issue 14: `kafka:start` printed "Kafka
 * exited unexpectedly" and never exited; a simulator whose duration ran out during an outage hung
 * and ignored SIGTERM):
 *
 * - `kafka:start` prints the variable the daemon reads, and exits non-zero when its broker dies;
 * - `acft simulate` exits when its `--duration-ms` ends and on SIGTERM, whatever the broker does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CliProcess } from '../support/cli-process.js';
import { daemonTopicEnv, uniqueTopic } from '../support/kafka.js';
import { OwnedBroker } from '../support/owned-broker.js';

describe('kafka:start', { timeout: 180_000 }, () => {
  it('prints ACFT_KAFKA_BROKERS and exits non-zero when its broker dies', async () => {
    const start = new CliProcess('scripts/kafka-local.ts', ['start']);
    try {
      const ready = await start.waitForLine(/^Kafka is ready in \d+ ms \(pid \d+/);
      const line = await start.waitForLine(/export ACFT_KAFKA_BROKERS=/);
      assert.match(line, /export ACFT_KAFKA_BROKERS=127\.0\.0\.1:\d+/);
      const jvm = Number(/\(pid (\d+)/.exec(ready)![1]);
      process.kill(jvm, 'SIGKILL');
      const exit = await start.exited;
      assert.equal(exit.code, 1, start.tail());
      assert.match(start.tail(), /Kafka exited unexpectedly/);
    } finally {
      await start.stop(5_000);
    }
  });
});

describe('acft simulate with its broker gone', { timeout: 300_000 }, () => {
  const broker = new OwnedBroker();
  before(() => broker.start());
  after(() => broker.cleanup());

  function simulate(extra: string[]): CliProcess {
    const t = daemonTopicEnv(uniqueTopic('tools-sim'));
    return new CliProcess(
      'src/cli/main.ts',
      [
        'simulate',
        '--brokers',
        broker.brokers.join(','),
        '--rate',
        '20',
        '--no-evaluate',
        '--create-topics',
        '--progress-ms',
        '0',
        ...extra,
      ],
      t,
    );
  }

  it('exits when its duration ends during an outage', async () => {
    const sim = simulate(['--duration-ms', '4000']);
    try {
      await sim.waitForLine(/simulating on /);
      await broker.stop('SIGKILL');
      await sim.waitForLine(/stopping \(4000 ms elapsed\)/);
      const exit = await sim.exited;
      assert.notEqual(exit.code, null, `exited by itself:\n${sim.tail()}`);
      assert.match(sim.tail(), /stopped|not stopped cleanly/);
    } finally {
      await sim.stop(5_000);
      await broker.start();
    }
  });

  it('exits on SIGTERM during an outage', async () => {
    const sim = simulate([]);
    try {
      await sim.waitForLine(/simulating on /);
      await broker.stop('SIGKILL');
      sim.kill('SIGTERM');
      await sim.waitForLine(/stopping \(SIGTERM\)/);
      const exit = await sim.exited;
      assert.notEqual(exit.code, null, `exited by itself, not by a signal:\n${sim.tail()}`);
    } finally {
      await sim.stop(5_000);
      await broker.start();
    }
  });
});
