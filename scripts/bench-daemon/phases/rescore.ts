/**
 * The rescore step of the pool phase: with the pool full, a promoted model version (a stored copy
 * of the served model under a new id) is published, and the full-pool rescore it starts is timed.
 */
import { initialModel } from '../../../src/daemon/initial-model.js';
import { encodeModelVersion, type ModelVersionMessage } from '../../../src/messages/index.js';
import { ModelStore } from '../../../src/model/model-store.js';
import { connectedProducer, type BenchContext } from '../context.js';
import { counterValue, type Instrumented } from '../instrumented.js';
import type { LogEvent } from '../log-tap.js';
import { figure, rateFigure, round, s, type Figure } from '../support.js';

export interface RescoreReport {
  version: string;
  servedBefore: string;
  candidates: number;
  m: number;
  patches: number;
  seconds: Figure;
  publishToServedSeconds: Figure;
  publishToRescoredSeconds: Figure;
  candidatesPerSecond: Figure;
  patchesPerSecond: Figure;
}

/** The promoted copy's model-version message, and the version served before it. */
interface PromotedCopy {
  message: Omit<ModelVersionMessage, 'schema'>;
  servedBefore: string;
}

/**
 * Publishes a promoted model version whose artifact is a stored copy of the served model (same
 * weights: same cost) under a new id; the daemon serves it and rescores its whole pool.
 */
export async function rescorePhase(ctx: BenchContext, run: Instrumented): Promise<RescoreReport> {
  const { config, daemon, phase } = run;
  const copy = await storePromotedCopy(ctx, run);
  const { message } = copy;
  const producer = await connectedProducer(ctx, 'rescore');
  const patchesBefore = await counterValue(daemon.metrics.patchesScored);
  const sent = performance.now();
  await producer.send({
    topic: config.kafka.topics.modelVersions,
    acks: -1,
    messages: [{ key: message.version, value: encodeModelVersion(message) }],
  });
  const { serving, rescored } = await awaitRescore(ctx, phase, message.version, sent);
  const patches = (await counterValue(daemon.metrics.patchesScored)) - patchesBefore;
  return rescoreReport(run, copy, { sent, serving, rescored, patches });
}

/**
 * Stores a copy of the served model (the M0) under a new id, as a promoted version of its lineage,
 * and returns the model-version message that announces it.
 */
async function storePromotedCopy(ctx: BenchContext, { config, daemon }: Instrumented): Promise<PromotedCopy> {
  const served = daemon.status().servedVersion;
  const m0 = await initialModel(config.model.m0Path, config.limits.numClasses, config.training.seed);
  if (served === null || m0.version !== served) {
    throw new Error(`the daemon serves ${served ?? 'nothing'}, expected ${m0.version}`);
  }
  const version = `${ctx.runId}-rescore`;
  const store = new ModelStore(config.model.storeDir);
  const createdAt = new Date().toISOString();
  const stored = await store.saveArtifact(m0.artifact, {
    version,
    parent: served,
    createdAt,
    info: {
      status: 'promoted',
      m0: m0.version,
      strategy: 'ACFT(HQ)',
      note: 'benchmark: a copy of the served model',
    },
  });
  const message: PromotedCopy['message'] = {
    version,
    parent: served,
    // Of the served M0's lineage: a daemon serves no other.
    m0: m0.version,
    strategy: 'ACFT(HQ)',
    status: 'promoted',
    counts: { q: 0, h: 0, labeled: 0, holdout: 0 },
    trainedOn: [],
    metrics: { holdoutAuc: null, parentHoldoutAuc: null },
    artifact: { location: stored.dir, sha256: stored.sha256 },
    windowStartedAt: createdAt,
    time: createdAt,
  };
  return { message, servedBefore: served };
}

/** The first log line of `phase`'s daemon of kind `event` about `version`. */
function versionEvent(
  ctx: BenchContext,
  phase: string,
  event: string,
  version: string,
  what: string,
): Promise<LogEvent> {
  return ctx.logs.next(
    what,
    (e) => e.phase === phase && e.event === event && e.fields['version'] === version,
    ctx.options.timeoutS * 1000,
    ctx.signal,
  );
}

/**
 * Waits for the daemon to serve `version` (sent at `sent`; a refusal fails the phase), then for it
 * to rescore its pool with it.
 */
async function awaitRescore(
  ctx: BenchContext,
  phase: string,
  version: string,
  sent: number,
): Promise<{ serving: LogEvent; rescored: LogEvent }> {
  const refused = versionEvent(ctx, phase, 'model-refused', version, 'a refusal').then((e) =>
    Promise.reject(new Error(`the daemon refused the version: ${JSON.stringify(e.fields['err'])}`)),
  );
  refused.catch(() => undefined);
  const serving = await Promise.race([
    versionEvent(ctx, phase, 'serving', version, `the daemon to serve ${version}`),
    refused,
  ]);
  ctx.progress(`[pool] serving ${version} after ${s(serving.at - sent)} s; rescoring`);
  const rescored = await versionEvent(
    ctx,
    phase,
    'rescored',
    version,
    `the daemon to rescore its pool with ${version}`,
  );
  return { serving, rescored };
}

/** The rescore's figures, from the daemon's 'rescored' line and the patch counter. */
function rescoreReport(
  { config }: Instrumented,
  { message, servedBefore }: PromotedCopy,
  at: { sent: number; serving: LogEvent; rescored: LogEvent; patches: number },
): RescoreReport {
  const { sent, serving, rescored, patches } = at;
  const candidates = Number(rescored.fields['candidates']);
  const seconds = Number(rescored.fields['seconds']);
  return {
    version: message.version,
    servedBefore,
    candidates,
    m: config.scoring.m,
    patches,
    seconds: figure(
      round(seconds),
      's',
      "the daemon's own 'rescored' log line: start to end of the full-pool rescore (the same span acft_rescore_duration_seconds observes)",
    ),
    publishToServedSeconds: figure(
      s(serving.at - sent),
      's',
      "model-version message sent -> the daemon's 'serving' log line (consume, load and sha256 check, model sent to the scoring worker)",
    ),
    publishToRescoredSeconds: figure(s(rescored.at - sent), 's', "message sent -> 'rescored' log line"),
    candidatesPerSecond: rateFigure(
      seconds > 0 ? candidates / seconds : null,
      "candidates of the 'rescored' line / its seconds",
    ),
    patchesPerSecond: rateFigure(
      seconds > 0 ? patches / seconds : null,
      'increase of acft_patches_scored_total during the rescore (m patches per image candidate, nothing else scored meanwhile) / seconds',
      'patches/s',
    ),
  };
}
