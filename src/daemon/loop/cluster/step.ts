/** Scale-out's inputs, each to its handler. */
import type { Effect, Input } from '../io.js';
import { publishOutbox } from '../durability.js';
import { maybeRequest } from '../requests.js';
import { maybeWindow } from '../windows.js';
import type { DaemonState, LoopContext } from '../state.js';
import { onRewound } from './assignment.js';
import { onElection } from './election.js';
import { onLedgerEntry, onLedgerWriteFailed, onLedgerWritten } from './ledger.js';
import { onCoordinatorWriteFailed, onCoordinatorWritten } from './requests.js';
import { onShortlist } from './shortlists.js';

export function onCluster(state: DaemonState, input: Input, ctx: LoopContext, out: Effect[]): void {
  if (state.cluster === undefined) return;
  switch (input.type) {
    case 'ledger-entry':
      onLedgerEntry(state, ctx, input, out);
      // The coordinator starts a window as soon as the ledger brings its b-th label.
      return maybeWindow(state, ctx, input.now, out);
    case 'election':
      return onElection(state, ctx, input.event, input.now, out);
    case 'shortlist':
      if (onShortlist(state, ctx, input, out)) maybeRequest(state, ctx, input.now, out);
      return;
    case 'ledger-written':
      return onLedgerWritten(state, input, out);
    case 'ledger-write-failed':
      return onLedgerWriteFailed(state, input, out);
    case 'coordinator-written':
      onCoordinatorWritten(state, input, out);
      publishOutbox(state, ctx, out);
      return maybeRequest(state, ctx, input.now, out);
    case 'coordinator-write-failed':
      return onCoordinatorWriteFailed(state, ctx, input, out);
    case 'rewound':
      return onRewound(state, ctx, input, out);
    case 'cluster-failed': {
      const type =
        input.what === 'take-over'
          ? 'catch-up-failed'
          : input.what === 'rewind'
            ? 'rewind-failed'
            : 'shortlist-failed';
      out.push({ type: 'emit', event: { type, err: input.error } });
      return;
    }
    default:
      return;
  }
}
