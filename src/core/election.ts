/**
 * Who coordinates (scale-out): the instance that owns the single partition of the coordination
 * topic, in a consumer group of its own, is the coordinator once it has read the ledger to its end.
 * A reducer `(state, event) => { state, effects }` over the consumer-group events.
 *
 * Rules:
 * - Losing the group membership (the session expired, the consumer crashed), an assignment
 *   without the partition, or a stop make the instance a follower at once. A rebalance alone does
 *   not: the coordination group's assignor gives the partition back to a holder that is still a
 *   member (daemon/adapters/assigners.ts), which keeps its term; should it go to another member,
 *   that member's take-over fences this one's writer before it acts.
 * - An assignment with the partition starts a new term (`term` + 1) and asks for a catch-up; the
 *   instance coordinates only after `caught-up` for that term (a catch-up of an older term is
 *   ignored), so a new coordinator never acts on a ledger it has not read to its end.
 * - `writer-lost` (a write was fenced by a newer coordinator, or its transaction could not be
 *   ended) makes the coordinator of that term a follower that no longer counts as owner, so that
 *   only a new assignment, a new term, makes it coordinate again.
 */

export interface ElectionState {
  /** Owns the coordination partition (per the latest assignment). */
  readonly owns: boolean;
  /** Counts the assignments that gave the partition; names the current term. */
  readonly term: number;
  /** Owns the partition and has caught up for the current term. */
  readonly coordinator: boolean;
}

export type ElectionEvent =
  | { readonly type: 'membership-lost' }
  | { readonly type: 'assigned'; readonly owns: boolean }
  | { readonly type: 'caught-up'; readonly term: number }
  | { readonly type: 'writer-lost'; readonly term: number }
  | { readonly type: 'stopped' };

export type ElectionEffect =
  | { readonly type: 'catch-up-needed'; readonly term: number }
  | { readonly type: 'became-coordinator'; readonly term: number }
  | { readonly type: 'stepped-down'; readonly term: number };

export const INITIAL_ELECTION: ElectionState = { owns: false, term: 0, coordinator: false };

/** The election reducer (pure; returns a new state). */
export function electionReducer(
  state: ElectionState,
  event: ElectionEvent,
): { state: ElectionState; effects: ElectionEffect[] } {
  const effects: ElectionEffect[] = [];
  const stepDown = (s: ElectionState): ElectionState => {
    if (s.coordinator) effects.push({ type: 'stepped-down', term: s.term });
    return { ...s, owns: false, coordinator: false };
  };
  switch (event.type) {
    case 'membership-lost':
    case 'stopped':
      return { state: stepDown(state), effects };
    case 'assigned': {
      if (!event.owns) return { state: stepDown(state), effects };
      // Kept through a rebalance that changed nothing for us: still the same term.
      if (state.owns) return { state, effects };
      const term = state.term + 1;
      effects.push({ type: 'catch-up-needed', term });
      return { state: { owns: true, term, coordinator: false }, effects };
    }
    case 'writer-lost':
      // A write of an older term says nothing about the current one.
      if (event.term !== state.term) return { state, effects };
      return { state: stepDown(state), effects };
    case 'caught-up': {
      if (!state.owns || state.coordinator || event.term !== state.term) return { state, effects };
      effects.push({ type: 'became-coordinator', term: state.term });
      return { state: { ...state, coordinator: true }, effects };
    }
  }
}
