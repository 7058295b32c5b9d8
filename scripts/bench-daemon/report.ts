/**
 * What the daemon benchmark (scripts/bench-daemon.ts) reports beside the phases' full results: the
 * headline figures of the closing note, and the short summary it prints.
 */
import type { BacklogPhaseReport, PoolPhaseReport, WindowsPhaseReport } from './phases.js';
import { figure, type Figure } from './support.js';

/** The phases' reports, each once it has one. */
export interface Results {
  pool?: PoolPhaseReport;
  backlog?: BacklogPhaseReport;
  windows?: WindowsPhaseReport;
}

/** The figures of the closing note, taken from the phases' results. */
export function headline(
  results: Results,
  peakRssBytes: number,
): Record<string, Figure | string | number | null> {
  const { pool, backlog, windows } = results;
  return {
    backend: pool?.backend ?? windows?.backend ?? null,
    ingestRateAtOfferedLoad: pool?.ingest.rate ?? null,
    offeredRate: pool?.offered.rate ?? null,
    ingestCapacityBacklog: backlog?.rate ?? null,
    scoringLatencyAtOfferedLoadP50: pool?.scoringLatency.p50 ?? null,
    scoringLatencyAtOfferedLoadP99: pool?.scoringLatency.p99 ?? null,
    scoringLatencyAtOfferedLoadHistogramP50: pool?.scoringLatency.histogramP50 ?? null,
    scoringLatencyAtOfferedLoadHistogramP99: pool?.scoringLatency.histogramP99 ?? null,
    scoringThroughputAtOfferedLoad: pool?.ingest.scoringThroughput ?? null,
    scoringLatencyOneAtATimeP50: pool?.probe?.p50 ?? null,
    scoringLatencyOneAtATimeP99: pool?.probe?.p99 ?? null,
    endToEndLatencyOneAtATimeP50: pool?.probe?.endToEndP50 ?? null,
    endToEndLatencyOneAtATimeP99: pool?.probe?.endToEndP99 ?? null,
    rescorePoolSize: pool?.rescore?.candidates ?? null,
    fullPoolRescore: pool?.rescore?.seconds ?? null,
    rescoreCandidatesPerSecond: pool?.rescore?.candidatesPerSecond ?? null,
    rescorePatchesPerSecond: pool?.rescore?.patchesPerSecond ?? null,
    bytesPerCandidateAccounted: pool?.memory.bytesPerCandidate.accounted ?? null,
    bytesPerCandidateHeapPlusExternal: pool?.memory.bytesPerCandidate.heapPlusExternal ?? null,
    bytesPerCandidateRss: pool?.memory.bytesPerCandidate.rss ?? null,
    bytesPerCandidateMarginalHeapPlusExternal:
      backlog?.marginalMemory?.bytesPerCandidate.heapPlusExternal ?? null,
    bthLabelToVersionMedian: windows?.bthLabelToVersion.median ?? null,
    bthLabelToVersionMedianPromoted: windows?.bthLabelToVersion.medianPromoted ?? null,
    peakRss: figure(
      peakRssBytes,
      'bytes',
      'resident set size sampled every 100 ms over the whole run (this process; the broker is another)',
    ),
  };
}

const fmt = (f: Figure | undefined | null, digits = 3): string =>
  f?.value === null || f?.value === undefined ? 'n/a' : `${Number(f.value.toFixed(digits))} ${f.unit}`;

/** The summary printed at the end: a line per group of figures. */
export function summary(results: Results, peakRssBytes: number): string {
  const { pool, backlog, windows } = results;
  const lines: string[] = [];
  if (pool !== undefined) {
    const l = pool.scoringLatency;
    const mem = pool.memory.bytesPerCandidate;
    lines.push(
      `  backend: ${pool.backend ?? 'unknown'}`,
      `  ingest at the offered load (${fmt(pool.offered.rate, 1)}): ${fmt(pool.ingest.rate, 1)}; all ${pool.ingest.candidates} pooled and scored ${fmt(pool.ingest.allPooledAndScoredSeconds)} after the first (scoring ${fmt(pool.ingest.scoringThroughput, 1)})`,
      `  scoring latency at that load: p50 ${fmt(l.p50, 4)}, p99 ${fmt(l.p99, 4)} (histogram_quantile: p50 ${fmt(l.histogramP50, 4)}, p99 ${fmt(l.histogramP99, 4)})`,
      `  bytes per pooled candidate: ${fmt(mem.accounted, 0)} accounted, ${fmt(mem.heapPlusExternal, 0)} heap+external, ${fmt(mem.rss, 0)} RSS`,
    );
    const r = pool.rescore;
    if (r !== null) {
      lines.push(
        `  full-pool rescore of ${r.candidates}: ${fmt(r.seconds)} (${fmt(r.candidatesPerSecond, 1)}, ${fmt(r.patchesPerSecond, 0)} with m ${r.m})`,
      );
    }
    const p = pool.probe;
    if (p !== null) {
      lines.push(
        `  scoring latency of a new candidate, one at a time (${p.candidates}): p50 ${fmt(p.p50, 4)}, p99 ${fmt(p.p99, 4)}; end to end p50 ${fmt(p.endToEndP50, 4)}, p99 ${fmt(p.endToEndP99, 4)}`,
      );
    }
  }
  if (backlog !== undefined) {
    const mm = backlog.marginalMemory?.bytesPerCandidate;
    if (mm !== undefined) {
      lines.push(
        `  marginal bytes per pooled candidate (N -> 2N): ${fmt(mm.heapPlusExternal, 0)} heap+external (${fmt(mm.arrayBuffers, 0)} of it typed arrays), ${fmt(mm.accounted, 0)} accounted`,
      );
    }
    lines.push(
      `  ingest capacity (draining a backlog of ${backlog.candidates}): ${fmt(backlog.rate, 1)}; scoring keeps up at ${fmt(backlog.scoringThroughput, 1)}${backlog.backpressure.pauses > 0 ? `; paused ${backlog.backpressure.pauses}x` : ''}`,
    );
  }
  if (windows !== undefined) {
    const each = windows.windows
      .map((w) => `${w.seconds.bthLabelToVersionReceived} s ${w.status}`)
      .join(', ');
    lines.push(
      `  b-th label -> model version (b ${windows.config.selection.b}): median ${fmt(windows.bthLabelToVersion.median)} [${each}]`,
    );
  }
  lines.push(`  peak RSS: ${(peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  return lines.join('\n');
}
