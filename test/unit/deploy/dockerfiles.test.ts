/**
 * deploy/Dockerfile and deploy/Dockerfile.gpu, read as text (no Docker engine here): multi-stage,
 * a non-root USER, a HEALTHCHECK on /healthz whose node one-liner really works (run here against a
 * local server), real ACFT_* options, and COPY sources that exist. hadolint runs where installed.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CONFIG_ENV_VARS, resolveConfig } from '../../../src/config/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments and blank lines dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && current === '')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    current += line;
    const match = /^(\S+)\s+([\s\S]*)$/.exec(current.trim());
    if (match) out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
    current = '';
  }
  return out;
}

function stages(all: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const ins of all) {
    if (ins.keyword === 'FROM') {
      const [from, as, name] = ins.args.split(/\s+/);
      out.push({ from: from!, ...(as?.toUpperCase() === 'AS' ? { name } : {}), instructions: [] });
    } else {
      out.at(-1)?.instructions.push(ins);
    }
  }
  return out;
}

/** ENV key=value pairs (values without quotes). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) {
      env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    }
  }
  return env;
}

function exec(stage: Stage, keyword: string): string[] | undefined {
  const ins = stage.instructions.filter((i) => i.keyword === keyword).at(-1);
  return ins === undefined ? undefined : (JSON.parse(ins.args) as string[]);
}

/** The HEALTHCHECK's exec-form command, e.g. ['node', '-e', '...']. */
function healthcheckCommand(stage: Stage): string[] {
  const ins = stage.instructions.find((i) => i.keyword === 'HEALTHCHECK');
  assert.ok(ins, 'a HEALTHCHECK');
  const match = /\bCMD\s+(\[.*\])\s*$/.exec(ins.args);
  assert.ok(match, `exec form: ${ins.args}`);
  return JSON.parse(match[1]!) as string[];
}

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A local server answering `status` on every path; resolves to its port. */
async function serve(status: number, seen: string[]): Promise<number> {
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.statusCode = status;
    res.end('{}');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Runs a healthcheck command (argv) with `env`; resolves to its exit code. */
function runCheck(argv: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

async function freePort(): Promise<number> {
  const port = await serve(200, []);
  const server = servers.pop()!;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

for (const [file, backend] of [
  ['deploy/Dockerfile', 'wasm'],
  ['deploy/Dockerfile.gpu', 'tensorflow-gpu'],
] as const) {
  void describe(file, () => {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    const all = stages(instructions(text));
    const runtime = all.at(-1)!;
    const env = envOf(runtime);

    void it('is a multi-stage build: TypeScript built in one stage, production dependencies in another', () => {
      assert.ok(all.length >= 3, `${all.length} stages`);
      const named = new Map(all.filter((s) => s.name).map((s) => [s.name!, s]));
      const build = named.get('build');
      assert.ok(build, 'a stage "build"');
      const runs = (s: Stage) =>
        s.instructions
          .filter((i) => i.keyword === 'RUN')
          .map((i) => i.args)
          .join('\n');
      assert.match(runs(build), /npm ci\b/);
      assert.doesNotMatch(runs(build), /--omit=dev/, 'dev dependencies build');
      assert.match(runs(build), /npm run build\b/);
      assert.ok(
        all.some((s) => /npm ci\b[^\n]*--omit=dev/.test(runs(s))),
        'a stage installs with --omit=dev',
      );
      const copies = runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
      assert.ok(
        copies.some((c) => /--from=build\s+\/src\/dist\s+\.\/dist/.test(c)),
        'dist/ from the build stage',
      );
      assert.ok(
        copies.some((c) => /^models\s/.test(c)),
        'models/',
      );
      assert.ok(
        copies.some((c) => /--from=\S+\s+\/app\/node_modules/.test(c)),
        'node_modules from a stage',
      );
    });

    void it('copies only sources that exist in the repository', () => {
      for (const stage of all) {
        for (const ins of stage.instructions.filter(
          (i) => i.keyword === 'COPY' && !i.args.includes('--from='),
        )) {
          const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith('--'));
          for (const source of parts.slice(0, -1)) assert.ok(existsSync(path.join(ROOT, source)), source);
        }
      }
    });

    void it('runs as a non-root user with a fixed uid', () => {
      const users = runtime.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args);
      const user = users.at(-1);
      assert.ok(user, 'a USER in the final stage');
      assert.doesNotMatch(user, /^(root|0)(:|$)/);
      assert.match(user, /^10001(:10001)?$/, 'the uid the Kubernetes manifests run as');
      const last = runtime.instructions.map((i) => i.keyword);
      assert.ok(last.lastIndexOf('USER') > last.lastIndexOf('RUN'), 'nothing runs as root after USER');
    });

    void it('starts `acft run` with node, exposes 9464 and keeps /var/lib/acft on a volume', () => {
      assert.deepEqual(exec(runtime, 'ENTRYPOINT'), ['node', 'dist/cli/main.js']);
      assert.deepEqual(exec(runtime, 'CMD'), ['run']);
      assert.ok(runtime.instructions.some((i) => i.keyword === 'EXPOSE' && /\b9464\b/.test(i.args)));
      assert.deepEqual(exec(runtime, 'VOLUME'), ['/var/lib/acft']);
      assert.ok(env.ACFT_MODEL_STORE_DIR?.startsWith('/var/lib/acft/'));
      assert.ok(env.ACFT_STATE_CHECKPOINT_DIR?.startsWith('/var/lib/acft/'));
    });

    void it(`sets ACFT_BACKEND=${backend}, ACFT_HTTP_HOST=0.0.0.0 and only real options`, () => {
      assert.equal(env.ACFT_BACKEND, backend);
      assert.equal(env.ACFT_HTTP_HOST, '0.0.0.0');
      const acft = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('ACFT_')));
      for (const k of Object.keys(acft)) assert.ok(k in CONFIG_ENV_VARS, `${k} is not an acft option`);
      assert.equal(resolveConfig({ env: acft }).http.port, 9464);
    });

    void it('has a HEALTHCHECK that asks /healthz with node (no curl in the image)', () => {
      const argv = healthcheckCommand(runtime);
      assert.equal(argv[0], 'node');
      assert.match(argv.join(' '), /\/healthz/);
    });

    void it('whose command exits 0 on 200, 1 on 503 and 1 when nothing listens', async () => {
      const argv = healthcheckCommand(runtime);
      const seen: string[] = [];
      const up = await serve(200, seen);
      assert.equal(await runCheck(argv, { ACFT_HTTP_PORT: String(up) }), 0);
      assert.deepEqual(seen, ['/healthz']);
      const down = await serve(503, []);
      assert.equal(await runCheck(argv, { ACFT_HTTP_PORT: String(down) }), 1);
      assert.equal(await runCheck(argv, { ACFT_HTTP_PORT: String(await freePort()) }), 1);
    });
  });
}

void describe('deploy/Dockerfile.gpu base', () => {
  void it('is a CUDA 11.8 + cuDNN 8 runtime on Ubuntu 22.04 (libtensorflow 2.9 of tfjs-node-gpu 4.22)', () => {
    const text = readFileSync(path.join(ROOT, 'deploy/Dockerfile.gpu'), 'utf8');
    assert.match(text, /ARG CUDA_IMAGE=nvidia\/cuda:11\.8\.\d+-cudnn8-runtime-ubuntu22\.04/);
    const all = stages(instructions(text));
    assert.equal(all.at(-1)!.from, '${CUDA_IMAGE}');
    assert.match(text, /npm rebuild @tensorflow\/tfjs-node-gpu/);
  });
});

void describe("compose's acft healthcheck", () => {
  void it('exits 0 when /readyz answers 200 and 1 on 503', async () => {
    const compose = parse(readFileSync(path.join(ROOT, 'deploy/docker-compose.yml'), 'utf8'), {
      merge: true,
    }) as { services: { acft: { healthcheck: { test: string[] } } } };
    const argv = compose.services.acft.healthcheck.test.slice(1);
    assert.equal(argv[0], 'node');
    const seen: string[] = [];
    const port = await serve(200, seen);
    const bound = argv.map((a) => a.replace('127.0.0.1:9464', `127.0.0.1:${port}`));
    assert.equal(await runCheck(bound, {}), 0);
    assert.deepEqual(seen, ['/readyz']);
    const down = await serve(503, []);
    assert.equal(
      await runCheck(
        argv.map((a) => a.replace('127.0.0.1:9464', `127.0.0.1:${down}`)),
        {},
      ),
      1,
    );
  });
});
