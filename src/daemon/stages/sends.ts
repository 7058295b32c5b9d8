/**
 * The sending stages: labeling requests (each send on its own: they do not wait for each other),
 * the outbox's model versions and the dead letters (one send at a time, in order). Each outcome,
 * confirmed or failed, goes back to the loop.
 */
import { concatMap, mergeMap, type OperatorFunction } from 'rxjs';
import type { Config } from '../../config/index.js';
import { faultPoint } from '../fault-points.js';
import type { Effect, Input } from '../loop/io.js';
import type { BrokerPort, Clock } from '../ports.js';

type Of<K extends Effect['type']> = Extract<Effect, { type: K }>;

export function sendRequests(
  broker: BrokerPort,
  config: Config,
  clock: Clock,
): OperatorFunction<Of<'send-requests'>, Input> {
  return (effects) =>
    effects.pipe(
      mergeMap(async (e): Promise<Input> => {
        const requestIds = e.requests.map((r) => r.requestId);
        try {
          await broker.send(
            config.kafka.topics.labelingRequests,
            e.requests.map((r) => ({ key: r.key, value: r.value })),
          );
          faultPoint('after-requests-sent');
          return { type: 'requests-sent', requestIds, now: clock.now() };
        } catch (error) {
          return { type: 'requests-failed', requestIds, error, now: clock.now() };
        }
      }),
    );
}

export function publishVersions(
  broker: BrokerPort,
  clock: Clock,
): OperatorFunction<Of<'publish-versions'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap(async (e): Promise<Input> => {
        const keys: string[] = [];
        try {
          for (const entry of e.entries) {
            await broker.send(entry.topic, [{ key: entry.key, value: entry.value }]);
            keys.push(entry.key);
            faultPoint('after-version-published');
          }
          return { type: 'versions-published', keys, now: clock.now() };
        } catch (error) {
          return keys.length > 0
            ? { type: 'versions-published', keys, now: clock.now() }
            : { type: 'versions-failed', error, now: clock.now() };
        }
      }),
    );
}

export function sendDeadLetters(
  broker: BrokerPort,
  config: Config,
  clock: Clock,
): OperatorFunction<Of<'send-dead-letters'>, Input> {
  return (effects) =>
    effects.pipe(
      concatMap(async (e): Promise<Input> => {
        try {
          await broker.send(
            config.kafka.topics.deadLetter,
            e.letters.map((d) => ({ key: d.key, value: d.value })),
          );
          return { type: 'dead-letters-sent', letters: e.letters, now: clock.now() };
        } catch (error) {
          return { type: 'dead-letters-failed', count: e.letters.length, error, now: clock.now() };
        }
      }),
    );
}
