/**
 * Scale-out's stages: the take-over of a term, the ledger writes (one at a time, in order), the
 * coordinator's transactional writes (one at a time), the shortlists, and the rewind of gained
 * candidates partitions. Their outcomes go back to the loop.
 */
import { EMPTY, concatMap, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import type { Config } from '../../config/index.js';
import type { Effect, Input } from '../loop/io.js';
import type { ClusterPort, Clock } from '../ports.js';

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;
type ClusterEffectType =
  | 'take-over'
  | 'drop-writer'
  | 'rejoin-election'
  | 'write-ledger'
  | 'coordinator-write'
  | 'publish-shortlist'
  | 'rewind'
  | 'resume-partitions';

/** Every scale-out effect to its stage. */
export function clusterStages(
  cluster: ClusterPort,
  config: Config,
  clock: Clock,
): (effects: Observable<Of<ClusterEffectType>>) => Observable<Input> {
  const failed = (what: 'take-over' | 'shortlist' | 'rewind', error: unknown): Input => ({
    type: 'cluster-failed',
    what,
    error,
    now: clock.now(),
  });
  return (effects) =>
    effects.pipe(
      mergeMap((e): Observable<Input> | Promise<Input> => {
        switch (e.type) {
          case 'take-over':
            return cluster.takeOver(e.term).catch((error: unknown) => failed('take-over', error));
          case 'drop-writer':
            cluster.dropWriter(e.term);
            return EMPTY;
          case 'rejoin-election':
            void cluster.rejoinElection().catch(() => undefined);
            return EMPTY;
          case 'publish-shortlist':
            return cluster.send(config.kafka.topics.coordination, [e.message]).then(
              () => EMPTY as never,
              (error: unknown) => failed('shortlist', error),
            );
          case 'rewind':
            return cluster.rewind(e.partitions).catch((error: unknown) => failed('rewind', error));
          case 'resume-partitions':
            cluster.resume(e.topic, e.partitions);
            return EMPTY;
          default:
            return EMPTY;
        }
      }),
    );
}

/** The ledger's writes, one at a time, in order. */
export function writeLedger(
  cluster: ClusterPort,
  config: Config,
  clock: Clock,
): OperatorFunction<Of<'write-ledger'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap(async (e): Promise<Input> => {
        try {
          if (e.messages.length > 0) await cluster.send(config.kafka.topics.ledger, e.messages);
          return { type: 'ledger-written', ids: e.ids, holds: e.holds, now: clock.now() };
        } catch (error) {
          return { type: 'ledger-write-failed', error, ids: e.ids, holds: e.holds, now: clock.now() };
        }
      }),
    );
}

/** The coordinator's transactional writes, one at a time. */
export function writeAsCoordinator(
  cluster: ClusterPort,
  clock: Clock,
): OperatorFunction<Of<'coordinator-write'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap(async (e): Promise<Input> => {
        try {
          await cluster.writeAsCoordinator(
            e.term,
            e.topics.map((t) => ({
              topic: t.topic,
              messages: t.messages.map((m) => ({ key: m.key, value: m.value })),
            })),
          );
          return {
            type: 'coordinator-written',
            what: e.what,
            keys: e.keys,
            count: e.count,
            ...(e.version !== undefined ? { version: e.version } : {}),
            now: clock.now(),
          };
        } catch (error) {
          return {
            type: 'coordinator-write-failed',
            what: e.what,
            term: e.term,
            keys: e.keys,
            ...cluster.writerLost(e.term, error),
            error,
            now: clock.now(),
          };
        }
      }),
    );
}
