/**
 * deploy/prometheus, deploy/grafana and the Prometheus Operator component: they parse, have the
 * expected structure, and every metric the alert rules and the dashboard query is one the daemon
 * exports. promtool's own checks run where promtool is installed (else skipped).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { seriesNames } from '../../../src/observability/metrics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');

function readYaml<T = unknown>(relative: string): T {
  return parse(readFileSync(path.join(DEPLOY, relative), 'utf8'), { merge: true }) as T;
}

function readJson<T = unknown>(relative: string): T {
  return JSON.parse(readFileSync(path.join(DEPLOY, relative), 'utf8')) as T;
}

/** Series names a query may select: what the daemon exports, plus Prometheus' own `up`. */
const ALLOWED = new Set([...seriesNames(), 'up']);

/** PromQL string literals (label values): no metric names in them. */
const STRING_LITERAL = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g;

/**
 * The metric names a PromQL expression selects: every `acft_*` identifier, and any other identifier
 * directly followed by a label matcher `{` or a range `[` (e.g. `up{job="acft"}`). String literals
 * (label values) are left out first.
 */
function metricNamesIn(expr: string): string[] {
  const code = expr.replace(STRING_LITERAL, '""');
  const names = new Set<string>();
  for (const m of code.matchAll(/(?<![A-Za-z0-9_:$])acft_[a-z0-9_]+/g)) names.add(m[0]);
  for (const m of code.matchAll(/(?<![A-Za-z0-9_:$.])([A-Za-z_:][A-Za-z0-9_:]*)\s*[{[]/g)) names.add(m[1]!);
  return [...names];
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

const alerts = readYaml<RuleFile>('prometheus/alerts.yml');
const rules = alerts.groups.flatMap((g) => g.rules);
const ruleByName = new Map(rules.map((r) => [r.alert ?? r.record, r]));

interface Target {
  expr?: string;
  refId?: string;
  legendFormat?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; definition?: string }[] };
  annotations: { list: { expr?: string; name: string }[] };
}

const dashboard = readJson<Dashboard>('grafana/dashboards/acft.json');
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const panelByTitle = new Map(panels.map((p) => [p.title, p]));

/** Every PromQL expression of the dashboard: panel targets, annotations, variable queries. */
function dashboardQueries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of panels) {
    for (const t of panel.targets ?? []) out.push({ where: `panel "${panel.title}"`, expr: t.expr ?? '' });
  }
  for (const a of dashboard.annotations.list) {
    if (a.expr !== undefined) out.push({ where: `annotation "${a.name}"`, expr: a.expr });
  }
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    for (const q of [query, v.definition]) {
      if (q !== undefined) out.push({ where: `variable "${v.name}"`, expr: q });
    }
  }
  return out;
}

void describe('metricNamesIn', () => {
  void it('finds acft_* names and selectors, not functions, labels or strings', () => {
    assert.deepEqual(
      metricNamesIn(
        'sum by (reason) (rate(acft_dead_letter_total{reason!="acft_not_a_metric"}[5m])) > 0 and on () up{job="acft"} == 0',
      ).sort(),
      ['acft_dead_letter_total', 'up'],
    );
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.99, sum by (le) (rate(acft_x_bucket[$__rate_interval])))'),
      ['acft_x_bucket'],
    );
    assert.deepEqual(metricNamesIn('upp{job="acft"}'), ['upp']);
  });
});

void describe('deploy/prometheus/prometheus.yml', () => {
  interface PromConfig {
    global: { scrape_interval: string; evaluation_interval: string };
    rule_files: string[];
    scrape_configs: {
      job_name: string;
      metrics_path?: string;
      static_configs: { targets: string[] }[];
    }[];
  }
  const config = readYaml<PromConfig>('prometheus/prometheus.yml');

  void it('loads alerts.yml, which sits beside it', () => {
    assert.ok(config.rule_files.includes('alerts.yml'));
    for (const file of config.rule_files) assert.ok(existsSync(path.join(DEPLOY, 'prometheus', file)), file);
  });

  void it('scrapes acft on /metrics in job "acft", the job the alert rules select', () => {
    const job = config.scrape_configs.find((j) => j.job_name === 'acft');
    assert.ok(job, 'job acft');
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(
      job.static_configs.flatMap((s) => s.targets),
      ['acft:9464'],
    );
    assert.match(ruleByName.get('AcftDown')!.expr, /up\{job="acft"\}/);
  });
});

void describe('deploy/prometheus/alerts.yml', () => {
  void it('has alerting rules with for, severity, summary and description', () => {
    assert.ok(rules.length >= 5);
    for (const rule of rules) {
      assert.ok(rule.alert, 'only alerting rules here');
      assert.equal(typeof rule.expr, 'string');
      assert.match(rule.for ?? '', /^\d+[smhd]$/, `${rule.alert}: for`);
      assert.ok(
        ['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''),
        `${rule.alert}: severity`,
      );
      assert.ok((rule.annotations?.summary ?? '').length > 10, `${rule.alert}: summary`);
      assert.ok((rule.annotations?.description ?? '').length > 20, `${rule.alert}: description`);
    }
    assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
  });

  void it('covers the issue: daemon down, dead letters, lag, no promotion, AUC drop', () => {
    const expect: [string, RegExp[]][] = [
      ['AcftDown', [/\bup\{job="acft"\} == 0/]],
      ['AcftDeadLetterRateHigh', [/rate\(acft_dead_letter_total\[/, /by \(reason\)/, /> [0-9.]+/]],
      ['AcftConsumerLagGrowing', [/deriv\(acft_consumer_lag\[/]],
      [
        'AcftNoPromotedVersion',
        [
          /acft_windows_total\{status="promoted"\}\[(\d+)h\]\)\) == 0/,
          /acft_feedback_total\{kind=~"requested\|unsolicited"\}\[\d+h\]\)\) > 0/,
        ],
      ],
      ['AcftHoldoutAucDropped', [/acft_served_model_holdout_auc/, /max_over_time\(/]],
    ];
    for (const [name, patterns] of expect) {
      const rule = ruleByName.get(name);
      assert.ok(rule, `${name} is defined`);
      for (const p of patterns) assert.match(rule.expr, p, name);
    }
    assert.equal(ruleByName.get('AcftDown')!.labels?.severity, 'critical');
  });

  void it('queries only series the daemon exports (and up)', () => {
    for (const rule of rules) {
      const names = metricNamesIn(rule.expr);
      assert.ok(names.length > 0, `${rule.alert} selects a series`);
      for (const name of names) assert.ok(ALLOWED.has(name), `${rule.alert}: ${name} is not exported`);
    }
  });
});

void describe('deploy/grafana', () => {
  void it('the dashboard parses, has unique panel ids and fits the 24-column grid', () => {
    assert.equal(dashboard.uid, 'acft-daemon');
    const all = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    assert.equal(new Set(all.map((p) => p.id)).size, all.length);
    for (const p of all) {
      assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
    }
  });

  void it('has the panels the issue asks for, each with a query', () => {
    for (const title of [
      'Pool size',
      'Ingest rate',
      'Dead-letter rate by reason',
      'Scoring latency',
      'Labeling requests',
      'Label latency',
      'Window duration',
      'Holdout AUC per version',
      'Class share of requests',
      'Consumer lag',
    ]) {
      const panel = panelByTitle.get(title);
      assert.ok(panel, `panel "${title}"`);
      assert.ok((panel.targets ?? []).length > 0, `panel "${title}" has targets`);
      for (const t of panel.targets ?? [])
        assert.ok((t.expr ?? '').trim().length > 0, `${title}: ${t.refId}`);
    }
    const scoring = panelByTitle
      .get('Scoring latency')!
      .targets!.map((t) => t.expr)
      .join('\n');
    assert.match(
      scoring,
      /histogram_quantile\(0\.5, sum by \(le\) \(rate\(acft_scoring_latency_seconds_bucket/,
    );
    assert.match(
      scoring,
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(acft_scoring_latency_seconds_bucket/,
    );
    const requests = panelByTitle
      .get('Labeling requests')!
      .targets!.map((t) => t.expr)
      .join('\n');
    assert.match(requests, /acft_labeling_requests_outstanding/);
    assert.match(requests, /acft_labeling_requests_answered_total/);
    assert.match(panelByTitle.get('Dead-letter rate by reason')!.targets![0]!.expr!, /by \(reason\)/);
    assert.match(panelByTitle.get('Holdout AUC per version')!.targets![0]!.expr!, /by \(version\)/);
    assert.match(
      panelByTitle.get('Class share of requests')!.targets![0]!.expr!,
      /acft_requested_class_share/,
    );
  });

  void it('queries only series the daemon exports (and up)', () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 20);
    const used = new Set<string>();
    for (const { where, expr } of queries) {
      for (const name of metricNamesIn(expr)) {
        used.add(name);
        assert.ok(ALLOWED.has(name), `${where}: ${name} is not exported`);
      }
    }
    assert.ok(used.size >= 20, `the dashboard uses ${used.size} series`);
  });

  void it('every panel takes its data source from the "datasource" variable', () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'datasource');
    assert.equal(variable?.type, 'datasource');
    assert.equal(variable.query, 'prometheus');
    for (const p of panels)
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
  });

  void it('provisions the Prometheus data source and the dashboards directory compose mounts', () => {
    const ds = readYaml<{ datasources: { type: string; url: string; uid: string }[] }>(
      'grafana/provisioning/datasources/prometheus.yml',
    );
    assert.equal(ds.datasources[0]?.type, 'prometheus');
    assert.equal(ds.datasources[0]?.url, 'http://prometheus:9090');
    const providers = readYaml<{ providers: { type: string; options: { path: string } }[] }>(
      'grafana/provisioning/dashboards/acft.yml',
    );
    const compose = readYaml<{ services: Record<string, { volumes?: string[] }> }>('docker-compose.yml');
    const mounts = compose.services.grafana?.volumes ?? [];
    const dashboardsMount = mounts.find((v) => v.startsWith('./grafana/dashboards:'));
    assert.ok(dashboardsMount, 'compose mounts the dashboards');
    assert.equal(dashboardsMount.split(':')[1], providers.providers[0]?.options.path);
    assert.ok(mounts.some((v) => v.startsWith('./grafana/provisioning:/etc/grafana/provisioning')));
  });
});

void describe('deploy/k8s/components/prometheus-operator', () => {
  const dir = 'k8s/components/prometheus-operator';

  void it('the PrometheusRule holds exactly the groups of alerts.yml', () => {
    const rule = readYaml<{ kind: string; spec: RuleFile }>(`${dir}/prometheusrule.yaml`);
    assert.equal(rule.kind, 'PrometheusRule');
    assert.deepEqual(rule.spec.groups, alerts.groups);
  });

  void it('the ServiceMonitor scrapes the Service acft on its metrics port (job="acft")', () => {
    const monitor = readYaml<{
      kind: string;
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string }[];
      };
    }>(`${dir}/servicemonitor.yaml`);
    const service = readYaml<{
      metadata: { name: string; labels: Record<string, string> };
      spec: { ports: { name: string }[] };
    }>('k8s/base/service.yaml');
    assert.equal(monitor.kind, 'ServiceMonitor');
    assert.equal(service.metadata.name, 'acft', 'the job label is the Service name');
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
      assert.equal(service.metadata.labels[k], v, k);
    }
    assert.deepEqual(
      monitor.spec.endpoints.map((e) => [e.port, e.path]),
      [['metrics', '/metrics']],
    );
    assert.ok(service.spec.ports.some((p) => p.name === 'metrics'));
  });
});
