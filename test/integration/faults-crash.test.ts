/**
 * Fault tests, daemon crashes (issue 5, scenarios 1 and 2): `acft run` as a child process is
 * SIGKILLed by a test-only fault point (src/daemon/fault-points.ts) during fine-tuning, right after
 * a checkpoint write, after producing outputs, after an offset commit; then restarted on the same
 * state. Each run asserts that the restart restores exactly the checkpoint the crash left, and that
 * nothing was lost, counted twice or published twice (FaultScenario.verify).
 *
 * The points run here are the CI share; test/faults/crash-points.test.ts runs the rest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useKafka } from '../support/kafka.js';
import { crashAndRecover } from '../support/crash-scenario.js';

const kafka = useKafka();

describe('daemon SIGKILL and restart on a real broker', { timeout: 600_000 }, () => {
  it('during fine-tuning: the window is trained again from the same inputs, one version', async () => {
    const result = await crashAndRecover(kafka.brokers, 'during-fine-tune');
    assert.ok(result.versionsPublished >= 1);
  });

  it('after producing a model version: the outbox does not publish it twice', async () => {
    const result = await crashAndRecover(kafka.brokers, 'after-version-published');
    assert.ok(result.versionsPublished >= 2);
  });
});
