/**
 * The daemon's metrics, counted from its event stream (observability/metrics.ts has their names,
 * types and help): counters and histograms from the events of what happened, gauges from the
 * `gauges` event of every tick.
 */
import type { Observable, Subscription } from 'rxjs';
import type { AcftMetrics } from '../../observability/metrics.js';
import type { DaemonEvent } from '../loop/events.js';
import type { ScorerPort } from '../ports.js';

export function writeMetrics(
  events$: Observable<DaemonEvent>,
  metrics: AcftMetrics,
  scorer: Pick<ScorerPort, 'featureCacheStats'>,
): Subscription {
  return events$.subscribe((e) => {
    count(e, metrics);
    measure(e, metrics, scorer);
  });
}

/** The counters. */
function count(e: DaemonEvent, m: AcftMetrics): void {
  switch (e.type) {
    case 'ingested':
      return m.candidatesIngested.inc(e.count);
    case 'dead-letter':
      return m.deadLettered.inc({ reason: e.reason });
    case 'candidates-dropped':
      return m.candidatesDropped.inc({ reason: e.reason }, e.count);
    case 'feedback':
      return m.feedback.inc({ kind: e.kind });
    case 'label-answered':
      m.labelingRequestsAnswered.inc();
      m.labelLatency.observe(e.seconds);
      return m.countRequestedLabel(String(e.label));
    case 'request-expired':
      return m.labelingRequestsExpired.inc(e.count);
    case 'requests-published':
      return m.labelingRequestsEmitted.inc(e.count);
    case 'window':
      m.windows.inc({ status: e.status });
      m.modelVersions.inc({ status: e.status });
      m.windowDuration.observe(e.seconds);
      if (e.holdoutAuc !== null) m.recordHoldoutAuc(e.version, e.holdoutAuc);
      return;
    case 'window-failed':
      return m.windows.inc({ status: 'failed' });
    case 'broker-outage':
      m.brokerConnected.set(0);
      return m.brokerOutages.inc();
    case 'broker-outage-ended':
      return m.brokerConnected.set(1);
    default:
      return;
  }
}

/** The histograms and gauges. */
function measure(e: DaemonEvent, m: AcftMetrics, scorer: Pick<ScorerPort, 'featureCacheStats'>): void {
  switch (e.type) {
    case 'scoring-batch':
      m.scoringBatch.observe(e.seconds);
      m.patchesScored.inc(e.patches);
      return m.patchesFromFeatureCache.inc(e.fromCache);
    case 'scoring-latency':
      for (const s of e.seconds) m.scoringLatency.observe(s);
      return;
    case 'rescore-progress':
      return m.rescoreProgress.set(e.ratio);
    case 'rescored':
      return m.rescoreDuration.observe(e.seconds);
    case 'serving':
      return m.serveModelVersion(e.version, e.holdoutAuc ?? undefined);
    case 'checkpoint':
      return m.recordCheckpoint(e.seconds);
    case 'paused':
      return m.poolPaused.set(1);
    case 'resumed':
      return m.poolPaused.set(0);
    case 'lag':
      return m.consumerLag.set({ topic: e.topic, partition: String(e.partition) }, e.behind);
    case 'partitions-assigned':
      return ownedPartitions(e.partitions, m);
    case 'gauges': {
      m.poolCandidates.set(e.pool);
      m.poolBytes.set(e.poolBytes);
      m.labelingRequestsOutstanding.set(e.outstanding);
      m.deadLetterUnsent.set(e.deadLettersUnsent);
      const cache = scorer.featureCacheStats();
      m.featureCacheBytes.set(cache?.bytes ?? 0);
      return m.featureCacheCandidates.set(cache?.entries ?? 0);
    }
    default:
      return;
  }
}

function ownedPartitions(partitions: readonly string[], m: AcftMetrics): void {
  const byTopic = new Map<string, number>();
  for (const tp of partitions) {
    const topic = tp.slice(0, tp.lastIndexOf(':'));
    byTopic.set(topic, (byTopic.get(topic) ?? 0) + 1);
  }
  for (const [topic, n] of byTopic) m.ownedPartitions.set({ topic }, n);
}
