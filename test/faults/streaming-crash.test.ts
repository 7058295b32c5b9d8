/**
 * Fault test, a crash under a live stream (issue 14's scenario): `acft simulate` streams 1,500
 * candidates at 100/s and answers the requests while the daemon SIGKILLs itself right after its
 * 4th offset commit (checkpoints every 2 s, so the intake runs on while each checkpoint is
 * written). Restarted, the daemon must account for every candidate and every feedback message by
 * id: pooled, labeled, expired, evicted (the pool holds 1,000) or dead-lettered, none lost.
 * Before the commit rule was fixed, 11-12 of the 1,500 were committed past and lost in each run.
 * `npm run test:faults`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultScenario } from '../support/fault-scenario.js';
import { useKafka } from '../support/kafka.js';

const kafka = useKafka();
const TOTAL = 1_500;

describe('a crash under a live stream', { timeout: 900_000 }, () => {
  it(`SIGKILL after-offset-commit@4 while ${TOTAL} candidates stream at 100/s: every one accounted for`, async () => {
    const s = new FaultScenario(kafka.brokers, 'stream-crash', { ACFT_STATE_CHECKPOINT_INTERVAL_MS: '2000' });
    try {
      const d1 = await s.startDaemon({ ACFT_FAULT_POINT: 'after-offset-commit@4' });
      await d1.waitForEvent('started');
      await s.collect();
      const sim = await s.startSimulator([
        '--rate',
        '100',
        '--total',
        String(TOTAL),
        '--no-evaluate',
        '--progress-ms',
        '0',
      ]);
      const exit = await d1.exited;
      assert.equal(exit.signal, 'SIGKILL', `the daemon died at the fault point:\n${d1.tail()}`);
      const d2 = await s.startDaemon();
      await d2.waitForEvent('started');
      while ((await s.topicSize(s.topics.candidates)) < TOTAL) {
        assert.ok(sim.running, `the simulator stopped early:\n${sim.tail()}`);
        assert.ok(d2.running, `the daemon died:\n${d2.tail()}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      // The last answers in, then everything read and committed.
      await s.waitAllCommitted(180_000);
      const simExit = await sim.stop();
      assert.equal(simExit.code, 0, `the simulator stopped cleanly:\n${sim.tail()}`);
      await s.waitAllCommitted(180_000);
      const stop = await d2.stop();
      assert.equal(stop.code, 0, `graceful stop:\n${d2.tail()}`);
      const counts = await s.verify();
      assert.equal(counts.accounting.candidatesSent, TOTAL);
      assert.equal(counts.accounting.candidatesAccounted, TOTAL);
      s.report(`SIGKILL after-offset-commit@4, simulator ${TOTAL} at 100/s`, counts, {
        restarts: 1,
      });
    } finally {
      await s.cleanup();
    }
  });
});
