/** What the simulator reports, and the lines it prints (pure). */
import type { ModelVersionStatus } from '../messages/index.js';

/** How the simulator measured a version, if it did. */
export type VersionEvaluation =
  | { kind: 'evaluated'; auc: number | null; size: number; ms: number }
  /** A promoted version it could not measure: the artifact is unreadable, or loading it failed. */
  | { kind: 'failed'; error: string }
  /** Not measured: evaluation is off, the version was rejected, or a newer one came first. */
  | { kind: 'skipped'; why: 'evaluation off' | 'rejected' | 'superseded' | 'stopping' };

/** One model version seen on `model-versions`, with the simulator's measure of it. */
export interface VersionReport {
  version: string;
  parent: string | null;
  status: ModelVersionStatus;
  /** The daemon's hold-out AUC of the version (null when its hold-out could not give one). */
  holdoutAuc: number | null;
  /** Labels the daemon had when it made the version: |L| plus the hold-out. */
  labels: number;
  /** Where the daemon says the artifact is. */
  artifactLocation: string;
  evaluation: VersionEvaluation;
}

/** The simulator's counters. */
export interface SimulatorStats {
  /** Candidates produced so far. */
  candidatesSent: number;
  /** Candidates the stream will send in all (the total, or the pool). */
  candidatesPlanned: number;
  /** The stream has sent every planned candidate. */
  streamFinished: boolean;
  /** Valid labeling requests consumed (duplicates and unknown candidates included). */
  requestsReceived: number;
  /** Requests for candidates the oracle does not know (counted, not answered). */
  requestsUnknown: number;
  /** Messages on the requests topic that did not parse (counted, not answered). */
  requestsInvalid: number;
  /** Redelivered requests (same request id) answered once only. */
  requestsDuplicate: number;
  /** Answers (feedback with a request id) produced. */
  answersSent: number;
  /** Answers waiting for their delay. */
  answersPending: number;
  /** Unsolicited (closed-loop CAD) feedback produced. */
  unsolicitedSent: number;
  /** Labels produced (answers and unsolicited) that were wrong on purpose. */
  noisyLabels: number;
  versionsPromoted: number;
  versionsRejected: number;
  /** Messages on the model-versions topic that did not parse. */
  versionsInvalid: number;
  evaluations: number;
  evaluationFailures: number;
  /** The latest promoted version and both AUCs of it (evaluation null until measured). */
  lastAuc: {
    version: string;
    holdoutAuc: number | null;
    evaluationAuc: number | null;
    labels: number;
  } | null;
  /** Kafka sends or commits that failed (each is retried or logged). */
  errors: number;
  /** Since the simulator started (connections included). */
  elapsedMs: number;
  /** Time spent streaming: from the first candidate to the last planned one (or now). */
  streamMs: number;
}

function auc(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(3);
}

/**
 * One line per version, e.g. `version v12 (promoted, parent v11): holdout AUC 0.812 (daemon) /
 * evaluation AUC 0.790 (simulator) after 120 labels`.
 */
export function formatVersionReport(r: VersionReport): string {
  const head = `version ${r.version} (${r.status}, parent ${r.parent ?? 'none'}): holdout AUC ${auc(r.holdoutAuc)} (daemon)`;
  const e = r.evaluation;
  let measured: string;
  if (e.kind === 'evaluated') measured = ` / evaluation AUC ${auc(e.auc)} (simulator)`;
  else if (e.kind === 'failed') measured = ` / not evaluated: ${e.error}`;
  else measured = e.why === 'evaluation off' || e.why === 'rejected' ? '' : ` / not evaluated (${e.why})`;
  return `${head}${measured} after ${r.labels} labels`;
}

/** The periodic progress line. */
export function formatProgress(s: SimulatorStats): string {
  const seconds = s.streamMs / 1000;
  const rate = seconds > 0 ? s.candidatesSent / seconds : 0;
  const parts = [
    `candidates ${s.candidatesSent}/${s.candidatesPlanned}${s.streamFinished ? ' (done)' : ''} (${rate.toFixed(1)}/s)`,
    `requests ${s.requestsReceived}` +
      (s.requestsUnknown + s.requestsInvalid > 0
        ? ` (unknown ${s.requestsUnknown}, invalid ${s.requestsInvalid})`
        : ''),
    `answers ${s.answersSent} (+${s.answersPending} pending)`,
    `unsolicited ${s.unsolicitedSent}`,
    `versions ${s.versionsPromoted} promoted / ${s.versionsRejected} rejected`,
  ];
  if (s.lastAuc !== null) {
    parts.push(
      `${s.lastAuc.version}: holdout ${auc(s.lastAuc.holdoutAuc)} / evaluation ${auc(s.lastAuc.evaluationAuc)}`,
    );
  }
  if (s.errors > 0) parts.push(`errors ${s.errors}`);
  return parts.join(', ');
}
