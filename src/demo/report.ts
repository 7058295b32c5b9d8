/**
 * The demo's HTML report: one self-contained file (inline CSS and SVG, images as data URIs, no
 * scripts, no external links) that a newcomer opens after `npm run demo`.
 */
import type { GalleryItem } from './gallery.js';
import type { DemoResult, DemoVersion } from './result.js';
import { classShareChart, escapeXml, learningCurveChart, patchStrip, type Series } from './svg.js';

const DAEMON = '#c2410c';
const RANDOM = '#2563eb';
const CLASS_COLORS = ['#64748b', '#db2777', '#0d9488', '#ca8a04', '#7c3aed'];
/** AUC differences smaller than this are not told apart (about the standard error of one run). */
const NOISE = 0.03;

function auc(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3);
}

function pct(part: number, total: number): string {
  return total > 0 ? `${((100 * part) / total).toFixed(0)}%` : '–';
}

function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 90) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Short names v1, v2, ... in publication order (the full ids are content hashes). */
export function versionNames(versions: readonly DemoVersion[]): Map<string, string> {
  return new Map(versions.map((v, i) => [v.version, `v${i + 1}`]));
}

function versionLabel(id: string | null, names: Map<string, string>): string {
  if (id === null) return '–';
  const short = names.get(id) ?? (id.startsWith('m0') ? 'M0' : id.slice(0, 11));
  return `<span title="${escapeXml(id)}">${escapeXml(short)}</span>`;
}

function curveSection(r: DemoResult): string {
  const rejected = r.versions.filter((v) => v.status === 'rejected' && v.evaluationAuc !== null);
  const series: Series[] = [];
  if (r.baseline) {
    series.push({
      name: `random selection, ${r.baseline.strategy} (offline, seed ${r.baseline.seed})`,
      color: RANDOM,
      points: r.baseline.curve,
    });
  }
  series.push({
    name: `acft daemon, ${r.settings.strategy} (the served model)`,
    color: DAEMON,
    points: r.daemonCurve,
    width: 2.8,
  });
  if (rejected.length > 0) {
    series.push({
      name: 'rejected versions (not served)',
      color: DAEMON,
      points: rejected.map((v) => ({ labels: v.labels, auc: v.evaluationAuc! })),
      markersOnly: true,
      hollow: true,
    });
  }
  const lastDaemon = r.daemonCurve.at(-1);
  const base = r.baseline;
  const lastRandom = base?.curve.at(-1);
  let verdict = '';
  if (lastDaemon && lastRandom) {
    const diff = lastDaemon.auc - lastRandom.auc;
    const figures = `the daemon's served model <b>${auc(lastDaemon.auc)}</b> after ${lastDaemon.labels} labels, random selection <b>${auc(lastRandom.auc)}</b> after ${lastRandom.labels}`;
    verdict =
      Math.abs(diff) < NOISE
        ? `At the end the two are within the noise of a single run (about ±${NOISE.toFixed(2)}) of each other: ${figures}.`
        : diff > 0
          ? `At the end the daemon is ahead: ${figures}.`
          : `At the end random selection is ahead in this run: ${figures}.`;
  }
  const alcLine =
    r.daemonAlc !== null && base?.alc !== null && base !== null
      ? ` Mean AUC over the run (area under the learning curve): daemon ${auc(r.daemonAlc)}, random ${auc(base.alc)}.`
      : '';
  const rejectedLine =
    rejected.length > 0
      ? ` ${rejected.length} version(s) were rejected by the daemon's promotion check, which compares holdout AUCs on its own ${rejected.at(-1)!.holdout} or fewer held-out labels, a small and noisy yardstick; the hollow circles show how they measured on the evaluation set.`
      : '';
  return `<section id="curve">
<h2>1. Learning curve</h2>
<p class="lead">Each point is a model version measured on the same ${r.settings.evalSize} evaluation candidates (from the task's validation split; neither side ever trains on them). ${verdict}${alcLine}</p>
<figure>${learningCurveChart(series)}</figure>
<p class="note">One run, one seed: with ${r.settings.evalSize} evaluation candidates (about one in ten positive) differences below about ${NOISE.toFixed(2)} are within the noise.${rejectedLine} Both curves start from the same model: M0 (pre-trained on MNIST digits) with the same fresh, seeded head. The daemon holds ${Math.round(r.settings.holdoutShare * 100)}% of its labels out for its promotion decisions and trains on the rest; the random baseline trains on every label. The daemon works on a live stream, so its first windows choose among the few candidates that had arrived; the baseline draws from all ${r.task.streamed} streamed candidates from the start.</p>
</section>`;
}

function versionsSection(r: DemoResult, names: Map<string, string>): string {
  const rows = r.versions
    .map(
      (v) => `<tr class="${v.status}">
<td>${versionLabel(v.version, names)}</td><td>${versionLabel(v.parent, names)}</td>
<td><span class="badge ${v.status}">${v.status}</span></td>
<td class="n">${v.labels}</td><td class="n">${v.q}</td><td class="n">${v.h}</td><td class="n">${v.trained}</td>
<td class="n">${auc(v.holdoutAuc)}</td><td class="n">${auc(v.parentHoldoutAuc)}</td>
<td class="n"><b>${auc(v.evaluationAuc)}</b>${v.evaluatedBy === 'demo' ? '<sup>*</sup>' : ''}</td>
<td class="n">${seconds(v.windowSeconds)}</td><td class="id">${escapeXml(v.version.slice(0, 14))}…</td></tr>`,
    )
    .join('\n');
  const measuredLater = r.versions.some((v) => v.evaluatedBy === 'demo');
  return `<section id="versions">
<h2>2. Model versions</h2>
<p class="lead">One version per fine-tuning window (${r.settings.strategy}: fine-tune the served model on Q, the ${r.settings.b} new labels, and H, the labeled candidates it misclassifies, plus a small replay). A version is promoted, and served at once, unless its holdout AUC falls more than the tolerance below its parent's.</p>
<table>
<thead><tr><th>version</th><th>parent</th><th>status</th><th>labels</th><th>|Q|</th><th>|H|</th><th>trained on</th><th>holdout AUC</th><th>parent's holdout AUC</th><th>evaluation AUC</th><th>window</th><th>id</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="12">No version was published.</td></tr>'}
</tbody></table>
${measuredLater ? '<p class="note"><sup>*</sup> measured by the demo after the run (the simulator measures promoted versions as they come and skips one superseded before its turn; rejected versions are measured here only).</p>' : ''}
</section>`;
}

function classSection(r: DemoResult): string {
  const names = r.task.classNames;
  const bars = [
    { label: 'candidates streamed', counts: r.task.streamedByClass },
    { label: "the daemon's requests", counts: r.requests.counts },
  ];
  if (r.baseline) bars.push({ label: 'random selection', counts: r.baseline.classCounts });
  const pos = names.length - 1;
  const streamedShare = pct(r.task.streamedByClass[pos] ?? 0, r.task.streamed);
  const askedShare = pct(r.requests.counts[pos] ?? 0, r.requests.total);
  return `<section id="classes">
<h2>3. Class share of the labeling requests</h2>
<p class="lead"><i>${escapeXml(names[pos] ?? 'positive')}</i> candidates make up ${streamedShare} of the stream and ${askedShare} of the daemon's labeling requests (by their true class): the daemon spends the expert's time on the candidates its model is least sure of, and the rare class is over-represented among them.</p>
<figure>${classShareChart(bars, names, CLASS_COLORS)}</figure>
</section>`;
}

function galleryCard(item: GalleryItem, positive: number): string {
  const patches = item.patches
    .map(
      (uri, j) =>
        `<img class="patch${item.keptPatches.includes(j) ? ' kept' : ''}" src="${uri}" alt="patch ${j + 1}" title="patch ${j + 1}: p(${positive}) = ${(item.patchProbs[j]?.[positive] ?? 0).toFixed(3)}">`,
    )
    .join('');
  const p = item.meanProbs[positive] ?? 0;
  return `<div class="card">
<img class="cand" src="${item.image}" alt="${escapeXml(item.id)}" title="${escapeXml(item.id)}">
<div class="meta"><div><b>score ${item.score.toFixed(3)}</b></div>
<div>truth: ${escapeXml(item.className)}</div><div>mean p = ${p.toFixed(2)}</div></div>
<div class="patches">${patches}</div>
<div class="strip">${patchStrip(item.patchProbs, positive, item.keptPatches, CLASS_COLORS[positive % CLASS_COLORS.length]!, 34)}</div>
</div>`;
}

function gallerySection(r: DemoResult, names: Map<string, string>): string {
  const g = r.gallery;
  if (!g) return '';
  const positive = r.task.classNames.length - 1;
  const posName = escapeXml(r.task.classNames[positive] ?? 'positive');
  return `<section id="gallery">
<h2>4. Gallery: what the model favors</h2>
<p class="lead">The ${g.scored} pool candidates not yet asked about, scored with the last served version (${versionLabel(g.version, names)}) exactly as the daemon scores them: the ${r.settings.m} patches of each candidate are predicted, majority selection keeps the patches that agree most with the dominant class (filled bars and framed patches), and the score is their mean entropy. High scores are what the next window would ask about; low scores are candidates the model is already sure of. Each bar is one patch's probability of <i>${posName}</i>.</p>
<div class="gallery">
<div><h3>Most favored (highest scores)</h3>${g.most.map((x) => galleryCard(x, positive)).join('\n')}</div>
<div><h3>Least favored (lowest scores)</h3>${g.least.map((x) => galleryCard(x, positive)).join('\n')}</div>
</div>
</section>`;
}

function settingsSection(r: DemoResult): string {
  const s = r.settings;
  const rows: [string, string][] = [
    ['task', escapeXml(r.task.name)],
    ['broker', `${escapeXml(r.broker.kind)} (${escapeXml(r.broker.brokers.join(', '))})`],
    ['tfjs backend', escapeXml(r.backend)],
    ['labels asked for', `${s.labels} (b = ${s.b} per window)`],
    ['strategy / criterion', `${escapeXml(s.strategy)} / ${escapeXml(s.criterion)}, majority selection`],
    ['patches per candidate (m)', `${s.m} (${escapeXml(s.augmentation)} augmentation)`],
    ['epochs per window', String(s.epochs)],
    ['stream', `${s.candidates} candidates at ${s.ratePerSecond}/s; answers after ${s.answerDelayMs} ms`],
    ['evaluation set', `${s.evalSize} validation candidates`],
    ['seed', String(s.seed)],
    ['stopped because', escapeXml(r.stopReason)],
    [
      'time',
      Object.entries(r.seconds)
        .map(([k, v]) => `${escapeXml(k)} ${seconds(v)}`)
        .join(' · '),
    ],
    ['daemon state and logs', `<code>${escapeXml(r.runDir)}</code>`],
  ];
  return `<section id="settings">
<h2>5. How this ran</h2>
<table class="kv">${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>
</section>`;
}

function metricsSection(r: DemoResult): string {
  if (r.metricsText === null) return '';
  const lines = r.metricsText.split('\n').length;
  return `<section id="metrics">
<h2>6. The daemon's /metrics at the end of the run</h2>
<details><summary>Prometheus text exposition, ${lines} lines (from ${escapeXml(r.metricsUrl ?? '/metrics')})</summary>
<pre>${escapeXml(r.metricsText)}</pre></details>
</section>`;
}

function keyFigures(r: DemoResult): string {
  const promoted = r.versions.filter((v) => v.status === 'promoted').length;
  const last = r.daemonCurve.at(-1);
  const base = r.baseline?.curve.at(-1);
  const m0 = r.daemonCurve[0];
  const cards: [string, string][] = [
    ['labels answered', String(r.simulator.answersSent)],
    ['model versions', `${r.versions.length} (${promoted} promoted)`],
    ['evaluation AUC, M0 → daemon', `${auc(m0?.auc)} → ${auc(last?.auc)}`],
    ['random selection, same labels', auc(base?.auc)],
    ['whole demo', seconds(r.seconds['total'])],
  ];
  return `<div class="cards">${cards.map(([k, v]) => `<div class="fig"><div class="v">${v}</div><div class="k">${escapeXml(k)}</div></div>`).join('')}</div>`;
}

const CSS = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c1917;background:#fafaf9;margin:0}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:34px 0 8px;border-bottom:1px solid #e7e5e4;padding-bottom:4px}
h3{font-size:15px;margin:8px 0}
.sub{color:#57534e;margin:0 0 18px}.lead{max-width:900px}.note{color:#57534e;font-size:13px;max-width:900px}
figure{margin:8px 0;background:#fff;border:1px solid #e7e5e4;border-radius:6px;padding:8px;display:inline-block}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.fig{background:#fff;border:1px solid #e7e5e4;border-radius:6px;padding:10px 14px;min-width:150px}
.fig .v{font-size:20px;font-weight:650}.fig .k{color:#57534e;font-size:12px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #e7e5e4;padding:4px 8px;text-align:left}th{background:#f5f5f4;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.id{font-family:ui-monospace,monospace;font-size:11px;color:#78716c}
tr.rejected td{color:#78716c}
.badge{border-radius:9px;padding:0 7px;font-size:12px}.badge.promoted{background:#dcfce7;color:#166534}.badge.rejected{background:#fee2e2;color:#991b1b}
table.kv th{width:220px}
.gallery{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.card{display:grid;grid-template-columns:64px 1fr;grid-template-rows:auto auto auto;column-gap:10px;background:#fff;border:1px solid #e7e5e4;border-radius:6px;padding:8px;margin-bottom:8px}
.card .cand{grid-row:1/4;width:64px;height:64px;image-rendering:pixelated;border:1px solid #d6d3d1}
.card .meta{display:flex;gap:14px;font-size:13px}
.patches{display:flex;gap:2px;margin:4px 0 2px}
.patch{width:28px;height:28px;image-rendering:pixelated;border:2px solid #e7e5e4}
.patch.kept{border-color:#db2777}
.strip svg{display:block}
details{background:#fff;border:1px solid #e7e5e4;border-radius:6px;padding:6px 10px}
pre{font-size:11px;line-height:1.35;overflow:auto;max-height:480px}
`;

/** The whole report as one HTML document. */
export function renderReport(r: DemoResult): string {
  const names = versionNames(r.versions);
  const when = new Date(r.finishedAt).toISOString().replace('T', ' ').slice(0, 19);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>acft demo report</title>
<style>${CSS}</style></head>
<body><main>
<h1>acft demo: active, continual fine-tuning on a live stream</h1>
<p class="sub">${escapeXml(r.task.name)} · ${when} UTC · Kafka: ${escapeXml(r.broker.kind)} broker · tfjs backend: ${escapeXml(r.backend)}</p>
<p class="lead">A simulated hospital streamed ${r.task.streamed} CAD candidates into Kafka. The acft daemon scored each one with its current CNN, asked the (simulated) radiologist to label the ${r.settings.b} most worthwhile per window, fine-tuned on the answers and served each new version at once. Below: how fast its model improved per label compared with asking about random candidates.</p>
${keyFigures(r)}
${curveSection(r)}
${versionsSection(r, names)}
${classSection(r)}
${gallerySection(r, names)}
${settingsSection(r)}
${metricsSection(r)}
</main></body></html>
`;
}
