/** Inline SVG charts of the demo report (no scripts, no external resources). */
import type { CurvePoint } from './result.js';

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

export interface Series {
  name: string;
  color: string;
  points: CurvePoint[];
  dashed?: boolean;
  /** Draw markers only (no line). */
  markersOnly?: boolean;
  /** Hollow markers. */
  hollow?: boolean;
  width?: number;
}

/** A learning-curve plot: AUC (y) against labels (x), one line per series, with a legend. */
export function learningCurveChart(
  series: readonly Series[],
  opts: { width?: number; height?: number } = {},
) {
  const width = opts.width ?? 760;
  const height = opts.height ?? 400;
  const m = { left: 58, right: 20, top: 20, bottom: 84 };
  const all = series.flatMap((s) => s.points);
  const maxLabels = Math.max(1, ...all.map((p) => p.labels));
  const aucs = all.map((p) => p.auc).filter((v) => Number.isFinite(v));
  let lo = Math.min(0.5, ...aucs);
  let hi = Math.max(...aucs, lo + 0.1);
  lo = Math.max(0, Math.floor((lo - 0.02) * 20) / 20);
  hi = Math.min(1, Math.ceil((hi + 0.02) * 20) / 20);
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const x = (labels: number) => m.left + (labels / maxLabels) * pw;
  const y = (auc: number) => m.top + (1 - (auc - lo) / (hi - lo)) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="learning curves" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="#fff" stroke="#ccc"/>`,
  );
  for (const t of ticks(lo, hi, 6)) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${m.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" fill="#555">${t.toFixed(2)}</text>`,
    );
  }
  for (const t of ticks(0, maxLabels, 8)) {
    parts.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${m.top}" y2="${m.top + ph}" stroke="#f3f3f3"/>`,
      `<text x="${x(t).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle" fill="#555">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 36}" text-anchor="middle" fill="#333">labels (radiologist answers)</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">AUC on the evaluation set</text>`,
  );
  for (const s of series) {
    const pts = [...s.points].filter((p) => Number.isFinite(p.auc)).sort((a, b) => a.labels - b.labels);
    if (pts.length === 0) continue;
    if (!s.markersOnly && pts.length > 1) {
      const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.labels).toFixed(1)},${y(p.auc).toFixed(1)}`);
      parts.push(
        `<path d="${d.join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2.2}"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    for (const p of pts) {
      parts.push(
        `<circle cx="${x(p.labels).toFixed(1)}" cy="${y(p.auc).toFixed(1)}" r="${s.hollow ? 4.5 : 3.2}" fill="${s.hollow ? '#fff' : s.color}" stroke="${s.color}" stroke-width="1.6"><title>${escapeXml(s.name)}: ${p.labels} labels, AUC ${p.auc.toFixed(3)}</title></circle>`,
      );
    }
  }
  // Legend below the plot, in rows of two.
  series.forEach((s, i) => {
    const lx = m.left + (i % 2) * (pw / 2);
    const ly = m.top + ph + 56 + Math.floor(i / 2) * 18;
    parts.push(
      s.markersOnly
        ? `<circle cx="${lx + 11}" cy="${ly - 4}" r="4.5" fill="${s.hollow ? '#fff' : s.color}" stroke="${s.color}" stroke-width="1.6"/>`
        : `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="${s.width ?? 2.2}"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${lx + 30}" y="${ly}" fill="#222">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** One horizontal bar split by class shares, with a label and percentages. */
export interface ShareBar {
  label: string;
  counts: number[];
}

export function classShareChart(
  bars: readonly ShareBar[],
  classNames: readonly string[],
  colors: readonly string[],
  width = 760,
): string {
  const rowH = 30;
  const labelW = 230;
  const barW = width - labelW - 20;
  const height = bars.length * rowH + 34;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="class share" font-family="system-ui, sans-serif" font-size="12">`,
  ];
  bars.forEach((bar, r) => {
    const total = bar.counts.reduce((a, b) => a + b, 0);
    const y0 = r * rowH + 4;
    parts.push(
      `<text x="${labelW - 8}" y="${y0 + 16}" text-anchor="end" fill="#222">${escapeXml(bar.label)} (${total})</text>`,
    );
    let x0 = labelW;
    bar.counts.forEach((c, k) => {
      const w = total > 0 ? (c / total) * barW : 0;
      if (w <= 0) return;
      const share = (100 * c) / total;
      parts.push(
        `<rect x="${x0.toFixed(1)}" y="${y0}" width="${w.toFixed(1)}" height="22" fill="${colors[k % colors.length]}"><title>${escapeXml(classNames[k] ?? String(k))}: ${c} (${share.toFixed(1)}%)</title></rect>`,
      );
      if (w > 34) {
        parts.push(
          `<text x="${(x0 + w / 2).toFixed(1)}" y="${y0 + 15}" text-anchor="middle" fill="#fff" font-weight="600">${share.toFixed(0)}%</text>`,
        );
      }
      x0 += w;
    });
  });
  const ly = bars.length * rowH + 22;
  classNames.forEach((name, k) => {
    const lx = labelW + k * 260;
    parts.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colors[k % colors.length]}"/>`,
      `<text x="${lx + 18}" y="${ly}" fill="#222">${escapeXml(name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * A strip of m bars, one per patch: the probability of class `k` (height), kept patches (those
 * majority selection scores) filled, the others hollow.
 */
export function patchStrip(
  probs: readonly (readonly number[])[],
  k: number,
  kept: readonly number[],
  color: string,
  cell = 30,
): string {
  const h = 34;
  const width = probs.length * cell;
  const keptSet = new Set(kept);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${h}" width="${width}" height="${h}" role="img" aria-label="patch predictions">`,
    `<line x1="0" x2="${width}" y1="${h - 0.5}" y2="${h - 0.5}" stroke="#bbb"/>`,
    `<line x1="0" x2="${width}" y1="${(h / 2).toFixed(1)}" y2="${(h / 2).toFixed(1)}" stroke="#e5e5e5" stroke-dasharray="2 2"/>`,
  ];
  probs.forEach((row, j) => {
    const p = Math.min(1, Math.max(0, row[k] ?? 0));
    const bh = Math.max(1, p * (h - 2));
    const on = keptSet.has(j);
    parts.push(
      `<rect x="${j * cell + 5}" y="${(h - 1 - bh).toFixed(1)}" width="${cell - 12}" height="${bh.toFixed(1)}" fill="${on ? color : '#fff'}" stroke="${color}" stroke-width="1"><title>patch ${j + 1}: p = ${p.toFixed(3)}${on ? ' (kept by majority selection)' : ''}</title></rect>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
