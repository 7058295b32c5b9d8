/** The crash-and-recover run shared by the crash fault tests (see FaultScenario for the checks). */
import assert from 'node:assert/strict';
import type { FaultPoint } from '../../src/daemon/fault-points.js';
import { FaultScenario } from './fault-scenario.js';

/**
 * Starts the daemon with `point` armed, feeds it candidates and answers its requests until it
 * SIGKILLs itself there; restarts it, checks the restored state, feeds it more until one more
 * version is out, stops it gracefully and verifies everything. Returns the counts.
 */
export async function crashAndRecover(brokers: string[], point: `${FaultPoint}${'' | `@${number}`}`) {
  const s = new FaultScenario(brokers, `crash-${point.replace('@', '-')}`);
  try {
    const d1 = await s.startDaemon({ ACFT_FAULT_POINT: point });
    await d1.waitForEvent('started');
    await s.collect();
    s.startOracle();
    const first = await s.sendCandidates(0, 40);
    // A closed-loop CAD label nobody asked for.
    await s.sendFeedback([{ candidateId: first[0]!, label: s.sent.get(first[0]!)!, annotatorId: 'cad' }]);
    const exit = await Promise.race([
      d1.exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`fault point ${point} not reached:\n${d1.tail()}`)), 150_000),
      ),
    ]);
    assert.equal(exit.signal, 'SIGKILL', `the daemon died at ${point}, not otherwise:\n${d1.tail()}`);
    await s.stopOracle();
    // What the crash left on the topics reaches the collectors.
    await new Promise((r) => setTimeout(r, 1_500));
    const before = await s.digest();
    const versionsBefore = s.versions.length;

    const d2 = await s.startDaemon();
    await FaultScenario.assertRestored(d2, before);
    await d2.waitForEvent('started');
    s.startOracle();
    await s.sendCandidates(40, 30);
    await s.waitFor('a new version after the restart', () => s.versions.length > versionsBefore, 180_000, d2);
    await s.stopOracle();
    // Let the last answers in before stopping (shutdown drains what was fetched).
    await s.waitAllCommitted();
    const exit2 = await d2.stop();
    assert.equal(exit2.code, 0, `graceful stop:\n${d2.tail()}`);
    const counts = await s.verify();
    s.report(`SIGKILL ${point}`, counts, { restoredServed: before?.servedVersion ?? null });
    return counts;
  } finally {
    await s.cleanup();
  }
}
