/**
 * The daemon's loop as one RxJS pipeline, read top to bottom:
 *
 *   sources (the brokers' inputs, the clock, the lifecycle, and every stage's outcome)
 *     -> the step (one state, one owner: `mapWithState`)
 *     -> effects, each kind to its stage, whose operator is its concurrency rule
 *     -> the stages' outcomes, back into the sources.
 *
 * Nothing here decides: the step does (loop/step.ts). Nothing here does I/O but through the ports
 * (ports.ts). The stages' outcomes re-enter on the asap scheduler, so that all the effects of one
 * step are carried out before the next input is folded.
 */
import {
  EMPTY,
  Subject,
  asapScheduler,
  ignoreElements,
  interval,
  map,
  merge,
  mergeMap,
  observeOn,
  share,
  takeUntil,
  tap,
  type Observable,
} from 'rxjs';
import { ownedPartitions } from '../core/offsets.js';
import type { DaemonEvent } from './loop/events.js';
import type { Effect, Input } from './loop/io.js';
import type { DaemonState, LoopContext } from './loop/state.js';
import { step } from './loop/step.js';
import type { Ports } from './ports.js';
import { mapWithState, ofType } from './rx-operators.js';
import { controlBroker, probeBrokers, readGroupOffsets } from './stages/broker.js';
import { checkpointThenCommit } from './stages/durability.js';
import { rescore, scoreNew, scoreWindow } from './stages/scoring.js';
import { publishVersions, sendDeadLetters, sendRequests } from './stages/sends.js';
import { loadVersions, serveModels } from './stages/serving.js';
import { saveVersion, train } from './stages/windows.js';
import { clusterStages, writeAsCoordinator, writeLedger } from './stages/cluster.js';
import type { ClusterPort, Clock } from './ports.js';

/** A running loop. */
export interface Loop {
  /** Every event the step reports, in order. */
  readonly events$: Observable<DaemonEvent>;
  /** Feeds an input from outside the sources (the lifecycle: start, drain). */
  push(input: Input): void;
  /** Resolves once the loop has drained (the last checkpoint written and committed, or failed). */
  readonly drained: Promise<void>;
  /** Stops every source and stage. */
  stop(): void;
}

export interface LoopOptions {
  readonly ports: Ports;
  readonly ctx: LoopContext;
  readonly state: DaemonState;
  /** An unrecoverable error (a long outage, a consumer that will not restart, a failing step). */
  readonly onFatal: (error: Error) => void;
}

export function runLoop({ ports, ctx, state, onFatal }: LoopOptions): Loop {
  const outcome$ = new Subject<Input>();
  const lifecycle$ = new Subject<Input>();
  const stop$ = new Subject<void>();
  const events$ = new Subject<DaemonEvent>();
  let drained!: () => void;
  const drainedPromise = new Promise<void>((resolve) => (drained = resolve));

  // Sources -> the step -> effects.
  const effect$ = steps(
    ports,
    ctx,
    state,
    onFatal,
    merge(lifecycle$, outcome$.pipe(observeOn(asapScheduler))),
  ).pipe(takeUntil(stop$), share());
  // Effects -> their stages -> outcomes, back into the sources.
  const subscription = merge(
    ...stages(ports, ctx, state, effect$),
    // Effects with no outcome.
    effect$.pipe(
      tap((e) => {
        if (e.type === 'emit') events$.next(e.event);
        else if (e.type === 'reply') e.reply(e.outcome);
        else if (e.type === 'forget') ports.scorer.forget(e.ids);
        else if (e.type === 'fatal') onFatal(e.error);
        else if (e.type === 'drained') drained();
      }),
      ignoreElements(),
    ),
  ).subscribe({
    next: (input) => outcome$.next(input),
    error: (error: unknown) => onFatal(new Error('the daemon pipeline failed', { cause: error })),
  });

  return {
    events$: events$.asObservable(),
    push: (input) => lifecycle$.next(input),
    drained: drainedPromise,
    stop: () => {
      stop$.next();
      subscription.unsubscribe();
      events$.complete();
    },
  };
}

/** The sources, merged, folded into the state by the step: the effects, in order. */
function steps(
  ports: Ports,
  ctx: LoopContext,
  state: DaemonState,
  onFatal: (error: Error) => void,
  inputs: Observable<Input>,
): Observable<Effect> {
  const { clock } = ports;
  return merge(
    ports.broker.inputs$,
    ports.cluster?.inputs$ ?? EMPTY,
    interval(ctx.tickMs, clock.scheduler).pipe(map((): Input => ({ type: 'tick', now: clock.now() }))),
    inputs,
  ).pipe(
    mapWithState((s: DaemonState, input: Input) => {
      try {
        const result = step(s, input, ctx);
        return { state: result.state, output: result.effects };
      } catch (error) {
        // A bug in the step: the state may be half-updated, so the supervisor restarts the daemon.
        onFatal(new Error(`the daemon's step failed on '${input.type}'`, { cause: error }));
        return { state: s, output: [] as Effect[] };
      }
    }, state),
    mergeMap((effects) => effects),
  );
}

/** Each kind of effect to its stage, whose operator is its concurrency rule. */
function stages(
  ports: Ports,
  ctx: LoopContext,
  state: DaemonState,
  effect$: Observable<Effect>,
): Observable<Input>[] {
  const { clock, broker, scorer, trainer, store, checkpoints } = ports;
  const { config } = ctx;
  return [
    effect$.pipe(ofType('score'), scoreNew(scorer, config, clock)),
    effect$.pipe(ofType('rescore'), rescore(scorer, config, clock)),
    effect$.pipe(ofType('score-window'), scoreWindow(scorer, config, clock)),
    effect$.pipe(ofType('serve'), serveModels(scorer, clock)),
    effect$.pipe(ofType('load-version'), loadVersions(store, ctx.m0Shape, config.model.m0Path, clock)),
    effect$.pipe(ofType('train'), train(trainer, store, clock, effect$.pipe(ofType('abandon-window')))),
    effect$.pipe(ofType('save-version'), saveVersion(store, clock)),
    effect$.pipe(ofType('checkpoint', 'commit'), checkpointThenCommit(checkpoints, broker, clock)),
    effect$.pipe(ofType('send-requests'), sendRequests(broker, config, clock)),
    effect$.pipe(ofType('publish-versions'), publishVersions(broker, clock)),
    effect$.pipe(ofType('send-dead-letters'), sendDeadLetters(broker, config, clock)),
    effect$.pipe(ofType('pause', 'resume', 'seek'), controlBroker(broker)),
    effect$.pipe(
      ofType('read-group-offsets'),
      readGroupOffsets(broker, () => ownedPartitions(state.offsets), clock),
    ),
    effect$.pipe(ofType('probe-brokers'), probeBrokers(broker, clock)),
    ...(ports.cluster ? clusterStagesOf(ports.cluster, effect$, ctx, clock) : []),
  ];
}

/** Scale-out's stages: its writes one at a time each, the rest as they come. */
function clusterStagesOf(
  cluster: ClusterPort,
  effect$: Observable<Effect>,
  ctx: LoopContext,
  clock: Clock,
): Observable<Input>[] {
  return [
    effect$.pipe(ofType('write-ledger'), writeLedger(cluster, ctx.config, clock)),
    effect$.pipe(ofType('coordinator-write'), writeAsCoordinator(cluster, clock)),
    effect$.pipe(
      ofType(
        'take-over',
        'drop-writer',
        'rejoin-election',
        'publish-shortlist',
        'rewind',
        'resume-partitions',
      ),
      clusterStages(cluster, ctx.config, clock),
    ),
  ];
}
