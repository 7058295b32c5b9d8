/**
 * Who coordinates, in the loop (core/election.ts decides): an assignment of the coordination
 * partition starts a term, whose take-over (effect `take-over`: the transactional writer opened,
 * which fences any previous coordinator, then the ledger and model-versions read to their ends)
 * ends in `caught-up`; losing the partition, or a write refused by the broker, steps down: the
 * writer is dropped and a window in flight abandoned (only a coordinator publishes versions).
 */
import { electionReducer, type ElectionEvent } from '../../../core/election.js';
import type { Effect } from '../io.js';
import { maybeRequest } from '../requests.js';
import type { DaemonState, LoopContext } from '../state.js';
import { abandonWindow, maybeWindow } from '../windows.js';
import type { ClusterState } from './state.js';

export function onElection(
  state: DaemonState,
  ctx: LoopContext,
  event: ElectionEvent,
  now: number,
  out: Effect[],
): void {
  const c = state.cluster as ClusterState;
  const step = electionReducer(c.election, event);
  c.election = step.state;
  for (const effect of step.effects) {
    switch (effect.type) {
      case 'catch-up-needed':
        out.push({ type: 'take-over', term: effect.term });
        break;
      case 'became-coordinator':
        c.shortlists.clear();
        out.push({
          type: 'emit',
          event: { type: 'coordinator', role: 'gained', term: effect.term, instance: c.instanceId },
        });
        maybeRequest(state, ctx, now, out);
        maybeWindow(state, ctx, now, out);
        break;
      case 'stepped-down':
        out.push({
          type: 'emit',
          event: { type: 'coordinator', role: 'lost', term: effect.term, instance: c.instanceId },
        });
        out.push({ type: 'emit', event: { type: 'coordinator-shortlists', fresh: 0 } });
        out.push({ type: 'drop-writer', term: effect.term });
        // Its versions not yet written are its successor's to publish, or not (never served here).
        state.servedOncePublished.clear();
        abandonWindow(state, ctx, out, 'stepped-down');
        break;
    }
  }
}
