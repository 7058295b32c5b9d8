/**
 * A small Jepsen-like run: the daemon (a child process) takes a stream of a few thousand
 * candidates, with feedback (the oracle's answers, unsolicited CAD labels, feedback for candidates
 * that never come) and hostile messages mixed in, and is SIGKILLed at random moments, at least 10
 * times, each time restarted on the same state; the kill times come from a seeded generator (the
 * seed is printed). Afterwards, stopped gracefully, everything is checked:
 *
 * - every candidate and feedback message accounted for by id (test/support/accounting.ts);
 * - no request id for a candidate while another one is outstanding, no version id published
 *   twice, the served version never moves backwards (test/support/crash-invariants.ts);
 * - the rest of FaultScenario.verify (labels once each, intact versions, no source references in
 *   the logs).
 *
 * Seeds run: ACFT_CRASH_SEEDS (comma-separated, or `random`), else the regression seeds below (a
 * seed that once failed is added there). `npm test` runs the first; `npm run test:faults` runs this
 * file too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../../src/core/rng.js';
import { parseFeedback } from '../../src/messages/index.js';
import { readTopic } from '../support/accounting.js';
import {
  assertVersionsOnce,
  concurrentRequests,
  servedBackwards,
  type Answer,
} from '../support/crash-invariants.js';
import { FaultScenario } from '../support/fault-scenario.js';
import { useKafka } from '../support/kafka.js';

const kafka = useKafka();

/** Seeds that ran (the first is the CI's); a seed that fails is added here as a regression case. */
const REGRESSION_SEEDS = [20261207];

function seeds(): number[] {
  const raw = process.env['ACFT_CRASH_SEEDS'];
  if (raw === undefined || raw === '') return REGRESSION_SEEDS.slice(0, 1);
  if (raw === 'random') return [Math.floor(Math.random() * 2 ** 31)];
  if (raw === 'all') return REGRESSION_SEEDS;
  return raw.split(',').map((s) => Number(s.trim()));
}

const TOTAL = 2_400;
const KILLS = 10;

async function run(seed: number): Promise<void> {
  process.stdout.write(`random crash run: seed ${seed} (ACFT_CRASH_SEEDS=${seed} repeats it)\n`);
  const rng = createRng(seed);
  const s = new FaultScenario(kafka.brokers, `random-crash-${seed}`, {
    ACFT_SELECTION_B: '10',
    ACFT_STATE_CHECKPOINT_INTERVAL_MS: '1000',
    ACFT_POOL_MAX_CANDIDATES: '1500',
    ACFT_POOL_PENDING_FEEDBACK_TTL_MS: '4000',
  });
  try {
    let daemon = await s.startDaemon();
    await daemon.waitForEvent('started');
    await s.collect();
    s.startOracle();
    // The stream: batches of 40 candidates every second or so, with feedback and hostile messages.
    let sent = 0;
    const stream = (async () => {
      while (sent < TOTAL) {
        const ids = await s.sendCandidates(sent, 40);
        sent += ids.length;
        const picked = ids.filter(() => rng.next() < 0.05);
        if (picked.length > 0)
          await s.sendFeedback(
            picked.map((id) => ({ candidateId: id, label: s.sent.get(id)!, annotatorId: 'cad' })),
          );
        if (rng.next() < 0.3) await s.sendOrphanFeedback([`ghost-${seed}-${sent}`]);
        if (rng.next() < 0.3)
          await s.send(s.topics.candidates, [
            { key: `bad-${sent}`, value: '{"schema":"acft.candidate/v1"' },
            { key: null, value: Buffer.from('not json at all') },
          ]);
        await new Promise((r) => setTimeout(r, 700 + rng.int(600)));
      }
    })();
    // The kills: at random moments of each run, from its start (so during restores too).
    const kills: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const after = 1_500 + rng.int(6_000);
      kills.push(after);
      await new Promise((r) => setTimeout(r, after));
      assert.ok(daemon.running, `the daemon exited by itself:\n${daemon.tail()}`);
      daemon.kill('SIGKILL');
      await daemon.exited;
      daemon = await s.startDaemon();
    }
    await stream;
    await daemon.waitForEvent('started', 180_000);
    // Every message read and committed, the oracle's last answers in.
    await s.waitAllCommitted(240_000);
    await s.stopOracle();
    await s.waitAllCommitted(240_000);
    const exit = await daemon.stop();
    assert.equal(exit.code, 0, `graceful stop:\n${daemon.tail()}`);

    const counts = await s.verify();
    assert.equal(counts.accounting.candidatesAccounted, counts.accounting.candidatesSent);
    assert.equal(counts.accounting.feedbackAccounted, counts.accounting.feedbackSent);
    const answers: Answer[] = (await readTopic(kafka.brokers, s.topics.feedback)).flatMap((m) => {
      const f = parseFeedback(m.value, { numClasses: 2 });
      return f.ok
        ? [
            {
              candidateId: f.value.candidateId,
              timeMs: Date.parse(f.value.time),
              ...(f.value.requestId ? { requestId: f.value.requestId } : {}),
            },
          ]
        : [];
    });
    assert.deepEqual(concurrentRequests(s.requests, answers), [], 'one request at a time per candidate');
    assertVersionsOnce(s.versions);
    assert.deepEqual(
      servedBackwards(
        s.daemons.map((d) => d.lines),
        s.versions,
      ),
      [],
      'the served version never moves backwards',
    );
    s.report(`random SIGKILLs, seed ${seed}`, counts, {
      kills: kills.length,
      killAfterMs: kills,
      restarts: s.daemons.length - 1,
    });
  } finally {
    await s.cleanup();
  }
}

describe('random SIGKILLs under a stream, restarted each time', { timeout: 1_800_000 }, () => {
  for (const seed of seeds()) {
    it(`seed ${seed}: ${KILLS} kills, every input accounted for, one request at a time, versions once and forward`, () =>
      run(seed));
  }
});
