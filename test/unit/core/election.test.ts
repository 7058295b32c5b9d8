import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  INITIAL_ELECTION,
  electionReducer,
  type ElectionEvent,
  type ElectionState,
} from '../../../src/core/election.js';

function run(events: readonly ElectionEvent[], state: ElectionState = INITIAL_ELECTION) {
  const effects = [];
  for (const e of events) {
    const step = electionReducer(state, e);
    state = step.state;
    effects.push(...step.effects);
  }
  return { state, effects };
}

void describe('election', () => {
  void it('coordinates only once caught up for the current term', () => {
    const { state, effects } = run([{ type: 'assigned', owns: true }]);
    assert.equal(state.coordinator, false);
    assert.deepEqual(effects, [{ type: 'catch-up-needed', term: 1 }]);
    const after = run([{ type: 'caught-up', term: 1 }], state);
    assert.equal(after.state.coordinator, true);
    assert.deepEqual(after.effects, [{ type: 'became-coordinator', term: 1 }]);
  });

  void it('keeps its role and term through a rebalance that gives the partition back', () => {
    const { state, effects } = run([
      { type: 'assigned', owns: true },
      { type: 'caught-up', term: 1 },
      { type: 'assigned', owns: true },
    ]);
    assert.deepEqual(state, { owns: true, term: 1, coordinator: true });
    assert.deepEqual(effects, [
      { type: 'catch-up-needed', term: 1 },
      { type: 'became-coordinator', term: 1 },
    ]);
  });

  void it('steps down when its group membership is lost, and a catch-up of an older term is ignored', () => {
    const { state, effects } = run([
      { type: 'assigned', owns: true },
      { type: 'caught-up', term: 1 },
      { type: 'membership-lost' },
      { type: 'assigned', owns: true },
      { type: 'caught-up', term: 1 },
    ]);
    assert.equal(state.coordinator, false);
    assert.equal(state.term, 2);
    assert.deepEqual(
      effects.map((e) => e.type),
      ['catch-up-needed', 'became-coordinator', 'stepped-down', 'catch-up-needed'],
    );
  });

  void it('an assignment without the partition, or a stop, makes a follower', () => {
    for (const last of [{ type: 'assigned', owns: false }, { type: 'stopped' }] as ElectionEvent[]) {
      const { state, effects } = run([
        { type: 'assigned', owns: true },
        { type: 'caught-up', term: 1 },
        last,
      ]);
      assert.equal(state.coordinator, false);
      assert.equal(effects.at(-1)?.type, 'stepped-down');
    }
  });

  void it('a lost writer (fenced) steps down until a new term; one of an older term is ignored', () => {
    const { state, effects } = run([
      { type: 'assigned', owns: true },
      { type: 'caught-up', term: 1 },
      { type: 'writer-lost', term: 1 },
      // Still a member with the partition per kafkajs: no new term until an assignment gives it.
      { type: 'caught-up', term: 1 },
    ]);
    assert.deepEqual(state, { owns: false, term: 1, coordinator: false });
    assert.equal(effects.at(-1)?.type, 'stepped-down');
    const again = run(
      [
        { type: 'assigned', owns: true },
        { type: 'caught-up', term: 2 },
        { type: 'writer-lost', term: 1 },
      ],
      state,
    );
    assert.deepEqual(again.state, { owns: true, term: 2, coordinator: true });
  });

  void it('coordinates exactly when it owns the partition and caught up for the latest term', () => {
    const event = fc.oneof(
      fc.constant<ElectionEvent>({ type: 'membership-lost' }),
      fc.constant<ElectionEvent>({ type: 'stopped' }),
      fc.boolean().map<ElectionEvent>((owns) => ({ type: 'assigned', owns })),
      fc.integer({ min: 0, max: 5 }).map<ElectionEvent>((term) => ({ type: 'caught-up', term })),
      fc.integer({ min: 0, max: 5 }).map<ElectionEvent>((term) => ({ type: 'writer-lost', term })),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        let state = INITIAL_ELECTION;
        let caughtUpTerm = -1;
        let gained = 0;
        let lost = 0;
        for (const e of events) {
          const step = electionReducer(state, e);
          if (e.type === 'caught-up' && e.term === state.term) caughtUpTerm = e.term;
          if (e.type === 'assigned' && e.owns && !state.owns) caughtUpTerm = -1;
          state = step.state;
          gained += step.effects.filter((x) => x.type === 'became-coordinator').length;
          lost += step.effects.filter((x) => x.type === 'stepped-down').length;
          assert.equal(state.coordinator, state.owns && caughtUpTerm === state.term);
          // Roles alternate: never two gains without a loss between them.
          assert.ok(gained - lost === (state.coordinator ? 1 : 0));
        }
      }),
    );
  });
});
