import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  emptyLabels,
  freshIds,
  getLabeled,
  ingestCandidate,
  ingestFeedback,
  newLabelsSinceWindow,
  type LabelingConfig,
  type LabelingState,
} from '../../../src/core/labels.js';
import {
  applyLabeledEntry,
  bookRequest,
  expireRequests,
  isOutstanding,
  labeledEntry,
  observeWindow,
  type LateTrained,
  type RequestBook,
} from '../../../src/core/ledger.js';
import { emptyPool, hasCandidate } from '../../../src/core/pool.js';

const config: LabelingConfig = {
  pool: {
    maxCandidates: 100,
    maxBytes: 1e9,
    ttlMs: 1e12,
    leaseMs: 1000,
    highWatermark: 0.9,
    lowWatermark: 0.5,
    compareVersions: () => 0,
  },
  labels: { holdoutShare: 0.3, maxPending: 10, pendingTtlMs: 1000 },
};

const fresh = (): LabelingState<string> => ({ pool: emptyPool(), labels: emptyLabels() });

function arrive(state: LabelingState<string>, id: string, now = 0) {
  return ingestCandidate(
    state,
    {
      id,
      source: { topic: 'c', partition: 1, offset: 7 },
      arrivedAtMs: now,
      bytes: 1,
      payload: `pixels-${id}`,
    },
    now,
    config,
  );
}

function vote(state: LabelingState<string>, id: string, label: number, annotatorId: string, timeMs: number) {
  return ingestFeedback(state, { candidateId: id, label, annotatorId, timeMs }, timeMs, config);
}

void describe('ledger', () => {
  void it('a labeled entry rebuilds the owner’s labeled candidate on another instance, idempotently', () => {
    const owner = fresh();
    const other = fresh();
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) arrive(owner, id);
    arrive(other, 'b'); // e.g. replayed there before the entry arrived
    vote(owner, 'a', 1, 'r1', 10);
    vote(owner, 'b', 0, 'r1', 11);
    vote(owner, 'b', 1, 'r2', 12);
    vote(owner, 'b', 1, 'r3', 13);
    for (const id of ['a', 'b']) {
      const entry = labeledEntry(owner.labels, id);
      assert.ok(entry);
      applyLabeledEntry(other, entry, 20, config);
      const effects = applyLabeledEntry(other, entry, 21, config);
      assert.ok(
        effects.every((e) => e.type === 'duplicate-feedback'),
        'a second application changes nothing',
      );
      const mine = getLabeled(owner.labels, id);
      const theirs = getLabeled(other.labels, id);
      assert.equal(theirs?.label, mine?.label);
      assert.equal(theirs?.heldOut, mine?.heldOut);
      assert.equal(theirs?.payload, `pixels-${id}`);
      assert.deepEqual(
        theirs?.votes.map((v) => [v.annotatorId, v.label, v.timeMs]),
        mine?.votes.map((v) => [v.annotatorId, v.label, v.timeMs]),
      );
    }
    assert.equal(hasCandidate(other.pool, 'b'), false, 'a pooled candidate leaves the pool for L');
    assert.equal(getLabeled(other.labels, 'b')?.label, 1);
    assert.deepEqual(freshIds(other.labels), freshIds(owner.labels));
    // The owner reading its own entry back: nothing changes.
    const own = labeledEntry(owner.labels, 'b');
    assert.ok(own);
    assert.ok(applyLabeledEntry(owner, own, 30, config).every((e) => e.type === 'duplicate-feedback'));
  });

  void it('a window seen on model-versions consumes its Q, late entries included', () => {
    const s = fresh();
    const owner = fresh();
    for (const id of ['a', 'b', 'c', 'x']) arrive(owner, id);
    for (const [i, id] of ['a', 'b', 'c', 'x'].entries()) vote(owner, id, i % 2, 'r', i + 1);
    const train = ['a', 'b', 'c', 'x'].filter((id) => !getLabeled(owner.labels, id)?.heldOut);
    for (const id of train.filter((id) => id !== 'x')) {
      const e = labeledEntry(owner.labels, id);
      if (e) applyLabeledEntry(s, e, 5, config);
    }
    const late: LateTrained = new Map();
    observeWindow(s.labels, { strategy: 'ACFT(HQ)', trainedOn: train }, 6, config.labels, late);
    assert.equal(s.labels.windowSeq, 1);
    assert.equal(newLabelsSinceWindow(s.labels), 0);
    if (train.includes('x')) {
      assert.ok(late.has('x'));
      const e = labeledEntry(owner.labels, 'x');
      assert.ok(e);
      applyLabeledEntry(s, e, 7, config, late);
      assert.equal(newLabelsSinceWindow(s.labels), 0, 'a late entry of a trained candidate is not new');
      assert.equal(getLabeled(s.labels, 'x')?.lastTrainedWindow, 0);
    }
    // A label after the window is new.
    arrive(owner, 'n');
    vote(owner, 'n', 1, 'r', 50);
    const n = labeledEntry(owner.labels, 'n');
    assert.ok(n);
    applyLabeledEntry(s, n, 51, config, late);
    assert.equal(newLabelsSinceWindow(s.labels), getLabeled(s.labels, 'n')?.heldOut ? 0 : 1);
  });

  void it('the request book knows what is outstanding until its lease ends', () => {
    const book: RequestBook = new Map();
    bookRequest(book, {
      candidateId: 'a',
      requestId: 'r1',
      modelVersion: 'v',
      issuedAtMs: 0,
      leaseUntilMs: 100,
    });
    bookRequest(book, {
      candidateId: 'b',
      requestId: 'r2',
      modelVersion: 'v',
      issuedAtMs: 0,
      leaseUntilMs: 300,
    });
    // An older record read after a newer one (e.g. replay) does not roll the request back.
    bookRequest(book, {
      candidateId: 'b',
      requestId: 'r0',
      modelVersion: 'v',
      issuedAtMs: -5,
      leaseUntilMs: 50,
    });
    assert.equal(book.get('b')?.requestId, 'r2');
    assert.equal(isOutstanding(book, 'a', 99), true);
    assert.equal(isOutstanding(book, 'a', 100), false);
    assert.deepEqual(
      expireRequests(book, 100).map((e) => e.candidateId),
      ['a'],
    );
    assert.deepEqual([...book.keys()], ['b']);
  });
});
