/**
 * The `labeled` ledger entries an instance writes (scale-out): one per change of a candidate's
 * votes, never the same entry twice, and a change made while an entry was in flight is written
 * after it (the run of issue 15 found identical entries from one writer milliseconds apart).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../../src/config/index.js';
import { labelingConfigOf } from '../../../src/config/derive.js';
import { applyLabeledEntry, bookRequest } from '../../../src/core/ledger.js';
import { labelsReducer } from '../../../src/core/labels.js';
import {
  onLedgerWriteFailed,
  onLedgerWritten,
  writeLedger,
} from '../../../src/daemon/loop/cluster/ledger.js';
import { emptyClusterState } from '../../../src/daemon/loop/cluster/state.js';
import { applyLabelingEffects } from '../../../src/daemon/loop/effects.js';
import type { Effect } from '../../../src/daemon/loop/io.js';
import { emptyState, type DaemonState, type LoopContext } from '../../../src/daemon/loop/state.js';
import type { StoredCandidate } from '../../../src/daemon/stored-candidate.js';
import { parseLedgerMessage } from '../../../src/messages/internal.js';

const config = resolveConfig({});
const labeling = labelingConfigOf(config, () => 0);
const payload: StoredCandidate = {
  kind: 'patches',
  dtype: 'uint8',
  shape: [1, 2, 2, 1],
  data: new Uint8Array(4),
};

function state(): DaemonState {
  const served = { version: 'm0', artifact: {} as never, holdoutAuc: null, publishedAtMs: 0 };
  const s = emptyState(served, 0, emptyClusterState('a', 'candidates'));
  applyLabeledEntry(
    s.labeling,
    {
      candidateId: 'c1',
      label: 1,
      heldOut: false,
      votes: [{ annotatorId: 'r1', label: 1, timeMs: 10 }],
      source: { topic: 'candidates', partition: 0, offset: 0 },
      payload,
    },
    10,
    labeling,
  );
  return s;
}

function vote(s: DaemonState, annotatorId: string, label: number, timeMs: number): void {
  labelsReducer(
    s.labeling.labels,
    { type: 'feedback', feedback: { candidateId: 'c1', annotatorId, label, timeMs }, now: timeMs },
    labeling.labels,
  );
}

function writes(out: Effect[]): { ids: readonly string[]; votes: string[] }[] {
  return out.flatMap((e) =>
    e.type === 'write-ledger'
      ? [
          {
            ids: e.ids,
            votes: e.messages.map((m) => {
              const parsed = parseLedgerMessage(m.value);
              assert.ok(parsed.ok);
              const entry = parsed.value;
              return entry.kind === 'labeled' ? entry.votes.map((v) => v.annotatorId).join(',') : '';
            }),
          },
        ]
      : [],
  );
}

describe('ledger writes', () => {
  it('writes an entry once: the same votes asked again write nothing, and the held offset is released', () => {
    const s = state();
    const c = s.cluster!;
    c.unwritten.add('c1');
    const out: Effect[] = [];
    writeLedger(s, 20, out);
    assert.deepEqual(writes(out), [{ ids: ['c1'], votes: ['r1'] }]);
    onLedgerWritten(s, { type: 'ledger-written', ids: ['c1'], holds: [], now: 30 }, out);
    assert.equal(c.unwritten.size, 0);
    // The same candidate, its votes unchanged (a label confirmed again, a replayed message).
    c.unwritten.add('c1');
    const again: Effect[] = [];
    const held = writeLedger(s, 40, again, { topic: 'feedback', partition: 0, offset: 7 });
    assert.deepEqual(writes(again), []);
    assert.equal(held, false, 'nothing to wait for');
    assert.equal(c.unwritten.size, 0);
    assert.deepEqual(c.holds, []);
  });

  it('a vote that arrives while the entry is in flight is written after it, not lost', () => {
    const s = state();
    const c = s.cluster!;
    c.unwritten.add('c1');
    const out: Effect[] = [];
    writeLedger(s, 20, out);
    vote(s, 'r2', 1, 25);
    c.unwritten.add('c1');
    writeLedger(s, 25, out); // one write at a time: waits
    assert.equal(writes(out).length, 1);
    onLedgerWritten(s, { type: 'ledger-written', ids: ['c1'], holds: [], now: 30 }, out);
    assert.deepEqual(writes(out), [
      { ids: ['c1'], votes: ['r1'] },
      { ids: ['c1'], votes: ['r1,r2'] },
    ]);
    onLedgerWritten(s, { type: 'ledger-written', ids: ['c1'], holds: [], now: 40 }, out);
    assert.equal(c.unwritten.size, 0);
    assert.equal(writes(out).length, 2);
  });

  it('a failed write is written again with the same entry', () => {
    const s = state();
    const c = s.cluster!;
    c.unwritten.add('c1');
    const out: Effect[] = [];
    writeLedger(s, 20, out);
    onLedgerWriteFailed(
      s,
      { type: 'ledger-write-failed', error: new Error('down'), ids: ['c1'], holds: [], now: 30 },
      out,
    );
    writeLedger(s, 40, out);
    assert.deepEqual(
      writes(out).map((w) => w.votes),
      [['r1'], ['r1']],
    );
  });
});

describe('feedback counted in scale-out', () => {
  const ctx = { config, labeling } as unknown as LoopContext;
  const kinds = (out: Effect[]): string[] =>
    out.flatMap((e) => (e.type === 'emit' && e.event.type === 'feedback' ? [e.event.kind] : []));

  it('an answer to a request the ledger holds counts as requested, though the candidate was replayed after it', () => {
    const s = state();
    bookRequest(s.cluster!.book, {
      candidateId: 'c2',
      requestId: 'r-c2',
      modelVersion: 'm0',
      issuedAtMs: 5_000,
      leaseUntilMs: 60_000,
    });
    const out: Effect[] = [];
    applyLabelingEffects(s, ctx, [{ type: 'first-label', candidateId: 'c2', label: 0 } as never], 8_000, out);
    assert.deepEqual(kinds(out), ['requested']);
    const answered = out.find((e) => e.type === 'emit' && e.event.type === 'label-answered');
    assert.ok(answered?.type === 'emit' && answered.event.type === 'label-answered');
    assert.equal(answered.event.seconds, 3);
  });

  it('an answer no request asked for counts as unsolicited', () => {
    const s = state();
    const out: Effect[] = [];
    applyLabelingEffects(s, ctx, [{ type: 'first-label', candidateId: 'c3', label: 0 } as never], 8_000, out);
    assert.deepEqual(kinds(out), ['unsolicited']);
  });

  it('votes read from ledger entries, own or of another instance, count no feedback here', () => {
    const s = state();
    const effects = applyLabeledEntry(
      s.labeling,
      {
        candidateId: 'c1',
        label: 1,
        heldOut: false,
        votes: [
          { annotatorId: 'r1', label: 1, timeMs: 10 },
          { annotatorId: 'r2', label: 1, timeMs: 12 },
        ],
        source: { topic: 'candidates', partition: 0, offset: 0 },
        payload,
      },
      20,
      labeling,
    );
    assert.ok(effects.length > 0);
    const out: Effect[] = [];
    applyLabelingEffects(s, ctx, effects, 20, out, true);
    assert.deepEqual(kinds(out), []);
  });
});
