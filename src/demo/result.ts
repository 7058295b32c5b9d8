/** What a demo run measured: demo.json holds it (without the images), report.html renders it. */
import type { SimulatorStats } from '../simulate/report.js';
import type { Gallery } from './gallery.js';

/** One point of a learning curve. */
export interface CurvePoint {
  labels: number;
  auc: number;
}

/** A model version the daemon published, with both measures of it. */
export interface DemoVersion {
  version: string;
  parent: string | null;
  status: 'promoted' | 'rejected';
  /** Labels the daemon had when it published the version (trainable plus held out). */
  labels: number;
  q: number;
  h: number;
  /** Candidates trained on (H ∪ Q and the replay). */
  trained: number;
  holdout: number;
  holdoutAuc: number | null;
  parentHoldoutAuc: number | null;
  /** AUC on the simulator's evaluation set (null if neither the simulator nor the demo measured it). */
  evaluationAuc: number | null;
  /** 'simulator' while the run was live; 'demo' for a version measured afterwards (rejected or superseded). */
  evaluatedBy: 'simulator' | 'demo' | null;
  /** From the window's start to the version's publication. */
  windowSeconds: number;
  trainingSeconds: number | null;
  publishedAt: string;
}

/** Labeling requests by the true class of the candidate asked about. */
export interface ClassCounts {
  classNames: string[];
  counts: number[];
}

export interface BaselineSummary {
  strategy: string;
  seed: number;
  curve: CurvePoint[];
  /** Picks per class over every step. */
  classCounts: number[];
  alc: number | null;
  finalAuc: number | null;
  seconds: number;
}

export interface DemoSettings {
  labels: number;
  b: number;
  m: number;
  epochs: number;
  strategy: string;
  criterion: string;
  augmentation: string;
  holdoutShare: number;
  ratePerSecond: number;
  candidates: number;
  answerDelayMs: number;
  evalSize: number;
  seed: number;
}

export interface DemoResult {
  startedAt: string;
  finishedAt: string;
  /** Wall-clock seconds of each phase. */
  seconds: Record<string, number>;
  stopReason: string;
  broker: { kind: string; brokers: string[] };
  backend: string;
  metricsUrl: string | null;
  task: {
    name: string;
    classNames: string[];
    /** Candidates streamed, and how many of each class. */
    streamed: number;
    streamedByClass: number[];
  };
  settings: DemoSettings;
  versions: DemoVersion[];
  /** The served model's evaluation AUC against labels: M0 (0 labels) and each promoted version. */
  daemonCurve: CurvePoint[];
  daemonAlc: number | null;
  baseline: BaselineSummary | null;
  requests: ClassCounts & { total: number };
  gallery: Gallery | null;
  simulator: SimulatorStats;
  daemon: { labeled: number; holdout: number; pool: number; windows: number };
  metricsText: string | null;
  runDir: string;
}

/** demo.json: the result without the images (data URIs) and the /metrics text. */
export function resultJson(result: DemoResult): string {
  return `${JSON.stringify(
    result,
    (key, value: unknown) =>
      key === 'image' || key === 'patches' || key === 'metricsText' ? undefined : value,
    2,
  )}\n`;
}
