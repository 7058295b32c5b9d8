/**
 * The durability stage: checkpoints and commits in one `concatMap`, so the order is the structure:
 * a checkpoint is written (atomically, checkpoint-file.ts) before the commit the loop derives from
 * it, one at a time, in the loop's order; a commit resolves only once the broker acknowledged it.
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { faultPoint } from '../fault-points.js';
import type { Effect, Input } from '../loop/io.js';
import { CommitRefusedError, type BrokerPort, type CheckpointStore, type Clock } from '../ports.js';

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;

export function checkpointThenCommit(
  checkpoints: CheckpointStore,
  broker: BrokerPort,
  clock: Clock,
): OperatorFunction<Of<'checkpoint' | 'commit'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap((e) => (e.type === 'checkpoint' ? write(checkpoints, clock, e) : commit(broker, clock, e))),
    );
}

async function write(checkpoints: CheckpointStore, clock: Clock, e: Of<'checkpoint'>): Promise<Input> {
  const started = performance.now();
  try {
    await checkpoints.write(e.file);
    faultPoint('after-checkpoint-write');
    return {
      type: 'checkpoint-written',
      durable: e.outbox,
      seconds: (performance.now() - started) / 1000,
      now: clock.now(),
    };
  } catch (error) {
    return { type: 'checkpoint-failed', error, now: clock.now() };
  }
}

async function commit(broker: BrokerPort, clock: Clock, e: Of<'commit'>): Promise<Input> {
  try {
    await broker.commit(e.offsets);
    faultPoint('after-offset-commit');
    return { type: 'committed', offsets: e.offsets, now: clock.now() };
  } catch (error) {
    const refused = error instanceof CommitRefusedError;
    return { type: 'commit-failed', error, refused, now: clock.now() };
  }
}
