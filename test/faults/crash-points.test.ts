/**
 * Fault tests, daemon crashes (issue 5, scenarios 1 and 2), the points not in CI
 * (test/integration/faults-crash.test.ts runs during-fine-tune and after-version-published):
 * SIGKILL right after a checkpoint write, after an offset commit, after sending labeling requests,
 * after saving a version to the model store, and during a later fine-tune. `npm run test:faults`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useKafka } from '../support/kafka.js';
import { crashAndRecover } from '../support/crash-scenario.js';

const kafka = useKafka();

describe('daemon SIGKILL at every crash point, and restart', { timeout: 1_800_000 }, () => {
  for (const point of [
    'after-checkpoint-write@4',
    'after-offset-commit@2',
    'after-requests-sent@1',
    'after-version-saved@1',
    'during-fine-tune@2',
  ] as const) {
    it(`SIGKILL ${point}`, async () => {
      const result = await crashAndRecover(kafka.brokers, point);
      assert.ok(result.versionsPublished >= 1);
    });
  }
});
