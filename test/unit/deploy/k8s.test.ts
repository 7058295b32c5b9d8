/**
 * deploy/k8s: every manifest parses; the kustomizations name files that exist; the Deployment has
 * its probes on the right paths and port, runs non-root on a read-only root file system, with
 * resources, the model-store volume and only real ACFT_* options; the GPU overlay asks for
 * nvidia.com/gpu. Where kubectl is installed, `kubectl kustomize` renders each variant too.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_ENV_VARS, RESERVED_ENV_VARS, resolveConfig } from '../../../src/config/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const K8S = path.join(ROOT, 'deploy', 'k8s');

function read<T>(relative: string): T {
  return parse(readFileSync(path.join(K8S, relative), 'utf8')) as T;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [full] : [];
  });
}

interface Probe {
  httpGet: { path: string; port: string | number };
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  enableServiceLinks?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  containers: Container[];
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }[];
  tolerations?: { key: string }[];
}
interface Deployment {
  kind: 'Deployment';
  metadata: { name: string };
  spec: {
    replicas: number;
    strategy?: { type: string };
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface ConfigMap {
  kind: 'ConfigMap';
  metadata: { name: string };
  data: Record<string, string>;
}
interface Kustomization {
  kind: string;
  namespace?: string;
  resources?: string[];
  components?: string[];
  patches?: { path: string }[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const deployment = read<Deployment>('base/deployment.yaml');
const pod = deployment.spec.template.spec;
const container = pod.containers[0]!;
const configMap = read<ConfigMap>('base/configmap.yaml');

function assertAcftEnv(env: Record<string, string>, where: string): void {
  for (const k of Object.keys(env)) {
    assert.ok(k in CONFIG_ENV_VARS || RESERVED_ENV_VARS.includes(k), `${where}: ${k} is not an acft option`);
  }
  assert.doesNotThrow(() => resolveConfig({ env }), `${where}: the configuration resolves`);
}

void describe('deploy/k8s manifests', () => {
  void it('every file parses as YAML, each document an object with a kind', () => {
    const files = yamlFiles(K8S);
    assert.ok(files.length >= 10);
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        assert.deepEqual(doc.errors, [], file);
        const value = doc.toJS() as { apiVersion?: string; kind?: string } | null;
        assert.ok(value?.kind && value.apiVersion, `${path.relative(K8S, file)}: apiVersion and kind`);
      }
    }
  });

  void it('kustomizations name resources, components and patches that exist', () => {
    for (const dir of ['base', 'components/prometheus-operator', 'overlays/cpu', 'overlays/gpu']) {
      const k = read<Kustomization>(`${dir}/kustomization.yaml`);
      for (const ref of [
        ...(k.resources ?? []),
        ...(k.components ?? []),
        ...(k.patches ?? []).map((p) => p.path),
      ]) {
        assert.ok(existsSync(path.join(K8S, dir, ref)), `${dir}: ${ref}`);
      }
    }
    const base = read<Kustomization>('base/kustomization.yaml');
    for (const file of ['deployment.yaml', 'configmap.yaml', 'service.yaml', 'pvc.yaml']) {
      assert.ok(base.resources?.includes(file), file);
    }
  });

  void it('runs one replica of acft run, replaced by stopping the old pod first', () => {
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy?.type, 'Recreate');
    assert.deepEqual(container.args, ['run']);
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) {
      assert.equal(deployment.spec.template.metadata.labels[k], v);
    }
  });

  void it('probes /healthz (startup, liveness) and /readyz (readiness) on the metrics port', () => {
    assert.equal(container.startupProbe?.httpGet.path, '/healthz');
    assert.equal(container.livenessProbe?.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe?.httpGet.path, '/readyz');
    const port = container.ports?.find((p) => p.name === 'metrics');
    assert.equal(port?.containerPort, Number(configMap.data.ACFT_HTTP_PORT));
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      assert.equal(probe?.httpGet.port, 'metrics');
    }
    assert.equal(configMap.data.ACFT_HTTP_HOST, '0.0.0.0', 'probes reach the pod IP');
  });

  void it('runs non-root, without privileges, on a read-only root file system with a writable /tmp', () => {
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.ok((pod.securityContext?.runAsUser ?? 0) >= 1000);
    assert.equal(pod.securityContext?.runAsUser, 10001, 'the uid of the images (USER 10001)');
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
    const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
    assert.ok(tmp && pod.volumes?.find((v) => v.name === tmp.name)?.emptyDir, '/tmp is an emptyDir');
  });

  void it('has resource requests and limits', () => {
    for (const kind of ['requests', 'limits'] as const) {
      assert.ok(container.resources?.[kind]?.cpu, `${kind}.cpu`);
      assert.ok(container.resources?.[kind]?.memory, `${kind}.memory`);
    }
  });

  void it('keeps the model store and checkpoints on the PersistentVolumeClaim', () => {
    const pvc = read<{ kind: string; metadata: { name: string }; spec: { accessModes: string[] } }>(
      'base/pvc.yaml',
    );
    assert.equal(pvc.kind, 'PersistentVolumeClaim');
    const volume = pod.volumes?.find((v) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
    assert.ok(volume, 'the Deployment mounts the claim');
    const mount = container.volumeMounts?.find((m) => m.name === volume.name);
    assert.equal(mount?.mountPath, '/var/lib/acft');
    assert.ok(configMap.data.ACFT_MODEL_STORE_DIR?.startsWith('/var/lib/acft/'));
    assert.ok(configMap.data.ACFT_STATE_CHECKPOINT_DIR?.startsWith('/var/lib/acft/'));
  });

  void it('takes ACFT_* options from the ConfigMap and the SASL password from a Secret', () => {
    assert.deepEqual(
      container.envFrom?.map((e) => e.configMapRef?.name),
      [configMap.metadata.name],
    );
    assertAcftEnv(configMap.data, 'ConfigMap acft-config');
    const password = container.env?.find((e) => e.name === 'ACFT_KAFKA_SASL_PASSWORD');
    assert.ok(password?.valueFrom?.secretKeyRef, 'from a Secret');
    for (const e of container.env ?? []) assert.ok(e.name in CONFIG_ENV_VARS, e.name);
    assert.equal(
      pod.enableServiceLinks,
      false,
      'service links would inject ACFT_SERVICE_HOST etc., which acft rejects',
    );
  });

  void it('exposes the metrics port through the Service', () => {
    const service = read<{
      spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
    }>('base/service.yaml');
    for (const [k, v] of Object.entries(service.spec.selector)) {
      assert.equal(deployment.spec.template.metadata.labels[k], v, k);
    }
    assert.deepEqual(
      service.spec.ports.map((p) => [p.name, p.targetPort]),
      [['metrics', 'metrics']],
    );
  });

  void it('the GPU overlay asks for one nvidia.com/gpu, the GPU image and the tensorflow-gpu backend', () => {
    const overlay = read<Kustomization>('overlays/gpu/kustomization.yaml');
    assert.ok(overlay.images?.some((i) => i.name === 'acft' && /gpu/.test(`${i.newName}:${i.newTag}`)));
    const patch = read<Deployment>('overlays/gpu/deployment-gpu.yaml');
    const gpu = patch.spec.template.spec.containers.find((c) => c.name === container.name);
    assert.equal(gpu?.resources?.limits?.['nvidia.com/gpu'], 1);
    const cm = read<ConfigMap>('overlays/gpu/configmap-gpu.yaml');
    assert.equal(cm.data.ACFT_BACKEND, 'tensorflow-gpu');
    assertAcftEnv({ ...configMap.data, ...cm.data }, 'GPU ConfigMap');
  });
});
