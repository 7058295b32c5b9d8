/**
 * The broker-control stages: pause, resume and seek (immediate), the group's committed offsets
 * read back, and the metadata probe (one at a time, with a timeout on the loop's clock).
 */
import {
  EMPTY,
  catchError,
  exhaustMap,
  from,
  map,
  mergeMap,
  of,
  race,
  timer,
  type OperatorFunction,
} from 'rxjs';
import type { TopicPartition } from '../../core/offsets.js';
import type { Effect, Input } from '../loop/io.js';
import type { BrokerPort, Clock } from '../ports.js';

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;

/** How long a broker probe may take (ms) before it counts as failed. */
export const PROBE_TIMEOUT_MS = 2_500;

export function controlBroker(broker: BrokerPort): OperatorFunction<Of<'pause' | 'resume' | 'seek'>, Input> {
  return (effects) =>
    effects.pipe(
      mergeMap((e) => {
        if (e.type === 'pause') broker.pause(e.topic);
        else if (e.type === 'resume') broker.resume(e.topic);
        else broker.seek(e.offsets);
        return EMPTY;
      }),
    );
}

export function readGroupOffsets(
  broker: BrokerPort,
  partitions: () => TopicPartition[],
  clock: Clock,
): OperatorFunction<Of<'read-group-offsets'>, Input> {
  return (effects) =>
    effects.pipe(
      exhaustMap(async (): Promise<Input> => {
        try {
          return { type: 'group-offsets', offsets: await broker.committed(partitions()), now: clock.now() };
        } catch (error) {
          // Read on from the group's offsets: a re-read, at worst (replays are no-ops).
          return {
            type: 'broker-failed',
            cause: `committed offsets not read: ${String(error)}`,
            now: clock.now(),
          };
        }
      }),
    );
}

export function probeBrokers(broker: BrokerPort, clock: Clock): OperatorFunction<Of<'probe-brokers'>, Input> {
  const failed = (cause: string): Input => ({ type: 'broker-failed', cause, now: clock.now() });
  return (effects) =>
    effects.pipe(
      exhaustMap(() =>
        race(
          from(broker.probe()).pipe(map((): Input => ({ type: 'broker-answered', now: clock.now() }))),
          timer(PROBE_TIMEOUT_MS, clock.scheduler).pipe(map(() => failed('metadata probe timed out'))),
        ).pipe(
          catchError((error: unknown) =>
            of(failed(`metadata probe failed: ${error instanceof Error ? error.name : String(error)}`)),
          ),
        ),
      ),
    );
}
