/**
 * Summaries of benchmark trajectories: per group (strategy x criterion x policy) the ALC and
 * final AUC (mean +- s.d. over seeds), the labels needed to reach the random baseline's final
 * AUC, the annotation saving against it, and step timings; rendered as JSON, a markdown table
 * (the paper's Table 4) and an SVG learning-curve plot (the paper's Fig. 5).
 */
import { labelsToReach, meanStd as meanStdOf } from '../core/metrics.js';
import type { TrajectoryResult } from './trajectory.js';

export interface GroupSummary {
  key: string;
  strategy: string;
  criterion: string;
  policy: string;
  seeds: number[];
  alc: { mean: number; sd: number };
  finalAuc: { mean: number; sd: number };
  /** Mean AUC (and s.d.) at each label count, over seeds. */
  curve: { labels: number; mean: number; sd: number }[];
  /** Labels the mean curve needs to reach the random baseline's final mean AUC (Infinity: never). */
  labelsToReachRandomFinal: number | null;
  /** 1 - labels(this) / labels(random) at the random baseline's final AUC. */
  annotationSavingVsRandom: number | null;
  meanFineTuneSecondsPerStep: number;
  meanScoreSecondsPerStep: number;
  /** Patches scored per second over the active steps (null when the group never scored). */
  patchesPerSecond: number | null;
  /** Share of each class among the selected candidates, over all steps and seeds. */
  classShareOfRequests: number[];
}

export function groupKey(r: Pick<TrajectoryResult, 'strategy' | 'criterion' | 'policy'>): string {
  return `${r.strategy} ${r.criterion} [${r.policy}]`;
}

function meanStd(values: readonly number[]): { mean: number; sd: number } {
  const { mean, std } = meanStdOf(values);
  return { mean, sd: std };
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

/**
 * Summarises trajectories by group; the random baseline is the RFT(LQ) group of the same policy,
 * or the only RFT(LQ) group when random selection ran under one policy.
 */
export function summarize(results: readonly TrajectoryResult[]): GroupSummary[] {
  const groups = new Map<string, TrajectoryResult[]>();
  for (const r of results) {
    const list = groups.get(groupKey(r)) ?? [];
    list.push(r);
    groups.set(groupKey(r), list);
  }
  const base = [...groups.entries()].map(([key, rs]) => {
    const first = rs[0]!;
    const labelsAxis = first.curve.map((p) => p.labels);
    const curve = labelsAxis.map((labels, i) => {
      const { mean, sd } = meanStd(rs.map((r) => r.curve[i]?.auc ?? NaN).filter((v) => Number.isFinite(v)));
      return { labels, mean, sd };
    });
    const steps = rs.flatMap((r) => r.steps);
    const active = steps.filter((s) => s.selection === 'active');
    const scoreSeconds = active.reduce((s, x) => s + x.scoreSeconds, 0);
    const patches = active.reduce((s, x) => s + x.patchesScored, 0);
    const classTotals = steps.reduce<number[]>(
      (acc, s) => s.classCountsInQ.map((c, y) => (acc[y] ?? 0) + c),
      [],
    );
    const totalQ = classTotals.reduce((a, b) => a + b, 0);
    return {
      key,
      strategy: first.strategy,
      criterion: first.criterion,
      policy: first.policy,
      seeds: rs.map((r) => r.seed),
      alc: meanStd(rs.map((r) => r.alc)),
      finalAuc: meanStd(rs.map((r) => r.finalAuc)),
      curve,
      labelsToReachRandomFinal: null as number | null,
      annotationSavingVsRandom: null as number | null,
      meanFineTuneSecondsPerStep:
        steps.reduce((s, x) => s + x.fineTuneSeconds, 0) / Math.max(1, steps.length),
      meanScoreSecondsPerStep: active.reduce((s, x) => s + x.scoreSeconds, 0) / Math.max(1, active.length),
      patchesPerSecond: scoreSeconds > 0 ? patches / scoreSeconds : null,
      classShareOfRequests: classTotals.map((c) => (totalQ > 0 ? c / totalQ : 0)),
    } satisfies GroupSummary;
  });
  for (const g of base) {
    const random =
      base.find((x) => x.strategy === 'RFT(LQ)' && x.policy === g.policy) ??
      base.find((x) => x.strategy === 'RFT(LQ)');
    if (!random) continue;
    const target = random.curve.at(-1)?.mean ?? NaN;
    const toCurve = (s: GroupSummary) => s.curve.slice(1).map((p) => ({ labels: p.labels, auc: p.mean }));
    const mine = labelsToReach(toCurve(g), target);
    const theirs = labelsToReach(toCurve(random), target);
    g.labelsToReachRandomFinal = Number.isFinite(mine) ? mine : null;
    g.annotationSavingVsRandom =
      Number.isFinite(mine) && Number.isFinite(theirs) ? finite(1 - mine / theirs) : null;
  }
  return base;
}

function fmt(x: { mean: number; sd: number }, digits = 3): string {
  return `${x.mean.toFixed(digits)} ± ${x.sd.toFixed(digits)}`;
}

/** The paper's Table 4 in markdown: ALC per strategy x criterion, one table per policy. */
export function markdownTable(groups: readonly GroupSummary[], title: string): string {
  const lines: string[] = [`# ${title}`, ''];
  const policies = [...new Set(groups.map((g) => g.policy))];
  for (const policy of policies) {
    const gs = groups.filter((g) => g.policy === policy);
    lines.push(`## policy: ${policy}`, '');
    lines.push(
      '| strategy | criterion | seeds | ALC | final AUC | labels to reach RFT final | saving vs RFT | fine-tune s/step | class share of requests |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|');
    for (const g of gs) {
      lines.push(
        `| ${g.strategy} | ${g.criterion} | ${g.seeds.join(',')} | ${fmt(g.alc)} | ${fmt(g.finalAuc)} | ${
          g.labelsToReachRandomFinal ?? 'not reached'
        } | ${g.annotationSavingVsRandom === null ? '–' : `${(g.annotationSavingVsRandom * 100).toFixed(1)}%`} | ${g.meanFineTuneSecondsPerStep.toFixed(
          2,
        )} | ${g.classShareOfRequests.map((s) => s.toFixed(2)).join(' / ')} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The legend label of a group: the criterion only when groups differ in it. */
function legendLabel(g: GroupSummary, groups: readonly GroupSummary[]): string {
  const criteria = new Set(groups.filter((x) => x.criterion !== 'random').map((x) => x.criterion));
  const criterion = g.criterion !== 'random' && criteria.size > 1 ? ` ${g.criterion}` : '';
  return `${g.strategy}${criterion} [${g.policy}]`;
}

/** AUC vs labels, one line per group, a mean +- s.d. band for each random (RFT) group. */
export function learningCurveSvg(groups: readonly GroupSummary[], title: string): string {
  const labels = groups.map((g) => legendLabel(g, groups));
  // A 460-pixel plot, and room on its right for the longest legend label.
  const left = 60;
  const right = 50 + 7 * Math.max(12, ...labels.map((l) => l.length));
  const W = left + 460 + right;
  const H = 440;
  const top = 40;
  const bottom = 50;
  const points = groups.flatMap((g) => g.curve);
  const maxLabels = Math.max(1, ...points.map((p) => p.labels));
  const lows = points.map((p) => p.mean - p.sd).filter(Number.isFinite);
  const highs = points.map((p) => p.mean + p.sd).filter(Number.isFinite);
  const yMin = Math.max(0, Math.floor(Math.min(...lows, 0.5) * 20) / 20);
  const yMax = Math.min(1, Math.ceil(Math.max(...highs, 0.6) * 20) / 20);
  const px = (n: number) => left + ((W - left - right) * n) / maxLabels;
  const py = (auc: number) => top + ((H - top - bottom) * (yMax - auc)) / (yMax - yMin || 1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15">${escapeXml(title)}</text>`,
  ];
  const step = (yMax - yMin) / 0.05 > 10 ? 0.1 : 0.05;
  for (let auc = yMin; auc <= yMax + 1e-9; auc += step) {
    out.push(
      `<line x1="${left}" x2="${W - right}" y1="${py(auc)}" y2="${py(auc)}" stroke="#eee"/>`,
      `<text x="${left - 8}" y="${py(auc) + 4}" text-anchor="end">${auc.toFixed(2)}</text>`,
    );
  }
  for (let t = 0; t <= 5; t++) {
    const n = Math.round((maxLabels * t) / 5);
    out.push(`<text x="${px(n)}" y="${H - bottom + 18}" text-anchor="middle">${n}</text>`);
  }
  out.push(
    `<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="#333"/>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="#333"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">labels</text>`,
    `<text transform="translate(16 ${(top + H - bottom) / 2}) rotate(-90)" text-anchor="middle">AUC</text>`,
  );
  groups.forEach((g, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = g.curve.filter((p) => Number.isFinite(p.mean));
    if (g.strategy === 'RFT(LQ)' && pts.length > 1) {
      const upper = pts.map(
        (p) => `${px(p.labels).toFixed(1)},${py(Math.min(yMax, p.mean + p.sd)).toFixed(1)}`,
      );
      const lower = pts
        .slice()
        .reverse()
        .map((p) => `${px(p.labels).toFixed(1)},${py(Math.max(yMin, p.mean - p.sd)).toFixed(1)}`);
      out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15"/>`);
    }
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts
        .map((p) => `${px(p.labels).toFixed(1)},${py(p.mean).toFixed(1)}`)
        .join(' ')}"/>`,
    );
    const ly = top + 10 + i * 18;
    out.push(
      `<line x1="${W - right + 12}" x2="${W - right + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${W - right + 38}" y="${ly + 4}">${escapeXml(labels[i]!)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}
