import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, register as globalRegistry, Registry } from 'prom-client';
import {
  createMetrics,
  FEEDBACK_KINDS,
  METRIC_NAMES,
  metricNames,
  MetricsAlreadyRegisteredError,
  seriesNames,
  WINDOW_STATUSES,
  type AcftMetrics,
} from '../../../src/observability/metrics.js';

/** Parses Prometheus text into sample lines: series name, labels (raw) and value. */
function parseSamples(text: string): { name: string; labels: string; value: number }[] {
  const samples: { name: string; labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(match, `unparsable line: ${line}`);
    samples.push({ name: match[1] ?? '', labels: match[2] ?? '', value: Number(match[3]) });
  }
  return samples;
}

/** Touches every metric the way the daemon does. */
function sampleUpdate(metrics: AcftMetrics): void {
  metrics.candidatesIngested.inc(3);
  metrics.deadLettered.inc({ reason: 'invalid-json' });
  metrics.poolCandidates.set(120);
  metrics.poolBytes.set(120 * 3136);
  metrics.poolPaused.set(1);
  metrics.scoringLatency.observe(0.012);
  metrics.scoringBatch.observe(0.004);
  metrics.patchesScored.inc(120 * 9);
  metrics.rescoreProgress.set(0.25);
  metrics.rescoreDuration.observe(4.2);
  metrics.labelingRequestsEmitted.inc(10);
  metrics.labelingRequestsOutstanding.set(7);
  metrics.labelingRequestsAnswered.inc(2);
  metrics.labelingRequestsExpired.inc(1);
  metrics.feedback.inc({ kind: 'requested' }, 2);
  metrics.labelLatency.observe(95);
  metrics.windowDuration.observe(42);
  metrics.windows.inc({ status: 'promoted' });
  metrics.modelVersions.inc({ status: 'promoted' });
  metrics.recordHoldoutAuc('v1', 0.81);
  metrics.serveModelVersion('v1', 0.81);
  metrics.countRequestedLabel('positive');
  metrics.consumerLag.set({ topic: 'candidates', partition: '0' }, 12);
  metrics.useBackend('wasm');
  metrics.leader.set(1);
  metrics.ownedPartitions.set({ topic: 'candidates' }, 2);
  metrics.coordinatorShortlists.set(2);
  metrics.brokerConnected.set(1);
  metrics.recordCheckpoint(0.02, new Date(1_700_000_000_000));
}

void describe('createMetrics', () => {
  void it('creates every named metric on the registry it is given, none on the global one', () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    assert.equal(metrics.registry, registry);
    for (const name of METRIC_NAMES) {
      assert.ok(registry.getSingleMetric(name), `${name} is registered`);
      assert.equal(globalRegistry.getSingleMetric(name), undefined, `${name} is not global`);
    }
    const fields = Object.values(metrics)
      .filter((value) => value instanceof Counter || value instanceof Gauge || value instanceof Histogram)
      .map((metric) => (metric as unknown as { name: string }).name);
    assert.deepEqual([...fields].sort(), [...METRIC_NAMES].sort(), 'one typed field per named metric');
  });

  void it('defaults to a fresh registry of its own', () => {
    const a = createMetrics(undefined, { defaultMetrics: false });
    const b = createMetrics(undefined, { defaultMetrics: false });
    assert.notEqual(a.registry, b.registry);
    assert.notEqual(a.registry, globalRegistry);
  });

  void it('exposes every named metric in the text output after a sample update', async () => {
    const metrics = createMetrics();
    sampleUpdate(metrics);
    const text = await metrics.registry.metrics();
    const exposed = new Set(parseSamples(text).map((sample) => sample.name));
    for (const name of METRIC_NAMES) {
      const metric = metrics.registry.getSingleMetric(name);
      const series = metric instanceof Histogram ? `${name}_bucket` : name;
      assert.ok(exposed.has(series), `${series} has a sample`);
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'));
    }
    assert.match(text, /^acft_consumer_lag\{topic="candidates",partition="0"\} 12$/m);
    assert.match(text, /^acft_model_version_info\{version="v1"\} 1$/m);
    assert.match(text, /^acft_last_checkpoint_timestamp_seconds 1700000000$/m);
  });

  void it('includes default process metrics with the acft_ prefix', async () => {
    const metrics = createMetrics();
    const text = await metrics.registry.metrics();
    assert.match(text, /^acft_process_cpu_user_seconds_total /m);
    assert.match(text, /^acft_nodejs_heap_size_used_bytes /m);
    const unprefixed = parseSamples(text).filter((sample) => !sample.name.startsWith('acft_'));
    assert.deepEqual(unprefixed, []);
  });

  void it('exports known label values at 0 before the first event', async () => {
    const metrics = createMetrics(new Registry(), { deadLetterReasons: ['oversized'], classes: ['0', '1'] });
    const samples = parseSamples(await metrics.registry.metrics());
    const labelsOf = (name: string) =>
      samples.filter((sample) => sample.name === name && sample.value === 0).map((sample) => sample.labels);
    for (const kind of FEEDBACK_KINDS)
      assert.ok(labelsOf('acft_feedback_total').includes(`{kind="${kind}"}`));
    for (const status of WINDOW_STATUSES)
      assert.ok(labelsOf('acft_windows_total').includes(`{status="${status}"}`));
    assert.deepEqual(labelsOf('acft_dead_letter_total'), ['{reason="oversized"}']);
    assert.deepEqual(labelsOf('acft_requested_class_share'), ['{class="0"}', '{class="1"}']);
  });

  void it('refuses to register twice on one registry, with a clear error', () => {
    const registry = new Registry();
    createMetrics(registry);
    assert.throws(() => createMetrics(registry), MetricsAlreadyRegisteredError);
  });
});

void describe('metric helpers', () => {
  const valuesOf = async (metrics: AcftMetrics, name: string) =>
    parseSamples(await metrics.registry.metrics()).filter((sample) => sample.name === name);

  void it('serves one model version and one backend at a time', async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    metrics.serveModelVersion('v1', 0.8);
    metrics.serveModelVersion('v2', 0.84);
    metrics.useBackend('cpu');
    metrics.useBackend('wasm');
    assert.deepEqual(await valuesOf(metrics, 'acft_model_version_info'), [
      { name: 'acft_model_version_info', labels: '{version="v2"}', value: 1 },
    ]);
    assert.deepEqual(await valuesOf(metrics, 'acft_backend_info'), [
      { name: 'acft_backend_info', labels: '{backend="wasm"}', value: 1 },
    ]);
    assert.equal((await valuesOf(metrics, 'acft_served_model_holdout_auc'))[0]?.value, 0.84);
  });

  void it('reports NaN as the served AUC until one is known', async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    assert.ok(Number.isNaN((await valuesOf(metrics, 'acft_served_model_holdout_auc'))[0]?.value));
    metrics.serveModelVersion('m0');
    assert.ok(Number.isNaN((await valuesOf(metrics, 'acft_served_model_holdout_auc'))[0]?.value));
  });

  void it('keeps the holdout AUC of the last N versions only', async () => {
    const metrics = createMetrics(new Registry(), { defaultMetrics: false, holdoutAucVersionsKept: 2 });
    metrics.recordHoldoutAuc('v1', 0.7);
    metrics.recordHoldoutAuc('v2', 0.75);
    metrics.recordHoldoutAuc('v3', 0.8);
    const series = await valuesOf(metrics, 'acft_holdout_auc');
    assert.deepEqual(
      series.map((sample) => [sample.labels, sample.value]),
      [
        ['{version="v2"}', 0.75],
        ['{version="v3"}', 0.8],
      ],
    );
  });

  void it('tracks the share of each class among answered requests, summing to 1', async () => {
    const metrics = createMetrics(new Registry(), {
      defaultMetrics: false,
      classes: ['negative', 'positive'],
    });
    for (const label of ['positive', 'negative', 'negative', 'negative']) metrics.countRequestedLabel(label);
    const shares = await valuesOf(metrics, 'acft_requested_class_share');
    assert.deepEqual(
      shares.map((sample) => [sample.labels, sample.value]),
      [
        ['{class="negative"}', 0.75],
        ['{class="positive"}', 0.25],
      ],
    );
    const counts = await valuesOf(metrics, 'acft_requested_labels_total');
    assert.equal(
      counts.reduce((sum, sample) => sum + sample.value, 0),
      4,
    );
  });
});

void describe('metricNames', () => {
  void it('matches the names on a registry the daemon creates', () => {
    const registry = new Registry();
    createMetrics(registry);
    const registered = registry
      .getMetricsAsArray()
      .map((metric) => metric.name)
      .sort();
    assert.deepEqual(metricNames(), registered);
  });

  void it('contains METRIC_NAMES and only acft_ names', () => {
    const names = new Set(metricNames());
    for (const name of METRIC_NAMES) assert.ok(names.has(name), name);
    for (const name of names) assert.ok(name.startsWith('acft_'), name);
    assert.equal(new Set(METRIC_NAMES).size, METRIC_NAMES.length, 'no duplicate names');
  });

  void it('lists the series PromQL sees, histograms expanded', async () => {
    const series = new Set(seriesNames());
    assert.ok(series.has('acft_scoring_latency_seconds_bucket'));
    assert.ok(series.has('acft_scoring_latency_seconds_count'));
    assert.ok(!series.has('acft_scoring_latency_seconds'));
    assert.ok(series.has('acft_pool_candidates'));
    // Every sample a populated registry writes is one of these series.
    const metrics = createMetrics();
    sampleUpdate(metrics);
    for (const sample of parseSamples(await metrics.registry.metrics())) {
      assert.ok(series.has(sample.name), sample.name);
    }
  });
});
