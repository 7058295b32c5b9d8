/**
 * The broker's loss, seen from outside, on a broker this file owns and kills (issue 14):
 *
 * - readiness follows the broker: the daemon reports the outage (`broker-outage`), /readyz turns
 *   503 and `acft_broker_connected` 0 while the broker is down; once it is back, the outage ends
 *   (`broker-outage-ended`, with its length), /readyz is 200 and the gauge 1 again;
 * - a dead letter born during the outage (feedback for a candidate that never comes, expiring
 *   while the broker is down) is not dropped: it reaches the dead-letter topic once the broker is
 *   back;
 * - everything sent is accounted for by id afterwards.
 *
 * The waits follow the daemon's events, not a clock: the detection time is reported, not asserted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DaemonProcess } from '../support/daemon-process.js';
import { FaultScenario } from '../support/fault-scenario.js';
import { OwnedBroker } from '../support/owned-broker.js';

const broker = new OwnedBroker();
before(() => broker.start());
after(() => broker.cleanup());

async function health(d: DaemonProcess): Promise<{ ready: number; connected: number }> {
  const url = await d.url();
  const ready = (await fetch(`${url}/readyz`)).status;
  const text = await (await fetch(`${url}/metrics`)).text();
  const connected = Number(/^acft_broker_connected (\S+)$/m.exec(text)?.[1]);
  return { ready, connected };
}

describe('the broker lost and back', { timeout: 600_000 }, () => {
  it('readiness follows the broker, the outage is logged with its length, and its dead letters arrive', async () => {
    const s = new FaultScenario(broker.brokers, 'broker-health', {
      ACFT_POOL_PENDING_FEEDBACK_TTL_MS: '4000',
    });
    try {
      const d = await s.startDaemon();
      await d.waitForEvent('started');
      await s.collect();
      await s.sendCandidates(0, 20);
      await s.waitAllCommitted();
      assert.deepEqual(await health(d), { ready: 200, connected: 1 });

      // Feedback whose candidate never comes, then the broker goes.
      await s.sendOrphanFeedback(['ghost-during-outage']);
      await d.waitForEvent('partitions-assigned');
      await s.waitAllCommitted();
      const stoppedAt = Date.now();
      await broker.stop('SIGKILL');
      const outage = await d.waitForEvent('broker-outage', 120_000);
      const detectedAfterMs = Date.parse(String(outage['time'])) - stoppedAt;
      assert.deepEqual(await health(d), { ready: 503, connected: 0 }, 'unready while the broker is down');
      // The feedback's wait ends while the broker is down: its dead letter is queued, not sent.
      await d.waitForEvent('dead-letter', 120_000, (l) => l['reason'] === 'unknown-candidate');
      assert.equal(s.dead.length, 0);

      await broker.start();
      const ended = await d.waitForEvent('broker-outage-ended', 120_000);
      assert.ok(Number(ended['durationMs']) > 0);
      assert.match(String(ended['msg']), /after \d+\.\d s/);
      await s.waitFor('the dead letter of the outage on its topic', () => s.dead.length >= 1, 120_000, d);
      assert.equal(s.dead[0]!.reason, 'unknown-candidate');
      assert.equal(s.dead[0]!.source.topic, s.topics.feedback, "the feedback's own position as its source");
      assert.deepEqual(await health(d), { ready: 200, connected: 1 });
      assert.ok(d.running, 'the daemon rode the outage out');

      await s.waitAllCommitted(120_000);
      assert.equal((await d.stop()).code, 0);
      const counts = await s.verify({ expectedDead: { 'unknown-candidate': 1 } });
      s.report('broker SIGKILL: readiness and dead letters', counts, {
        outageDetectedAfterMs: detectedAfterMs,
        outageMs: ended['durationMs'],
      });
    } finally {
      await s.cleanup();
    }
  });
});
