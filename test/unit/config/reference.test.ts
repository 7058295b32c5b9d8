import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import {
  CONFIG_OPTIONS,
  configReference,
  renderConfigurationMarkdown,
  resolveConfig,
} from '../../../src/config/index.js';

const DOC = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'docs',
  'configuration.md',
);

/** The generated page as the repository's prettier would format it. */
async function expectedDoc(): Promise<string> {
  const options = (await prettier.resolveConfig(DOC)) ?? {};
  return prettier.format(renderConfigurationMarkdown(), { ...options, filepath: DOC });
}

void describe('configReference', () => {
  void it('has one row per option with env, path, default and description', () => {
    const rows = configReference();
    assert.equal(rows.length, CONFIG_OPTIONS.length);
    for (const r of rows) {
      assert.match(r.env, /^ACFT_/);
      assert.ok(r.path.length > 0 && r.default.length > 0 && r.description.length > 0, r.path);
    }
    const find = (env: string) => rows.find((r) => r.env === env);
    assert.deepEqual(find('ACFT_POOL_MAX_CANDIDATES'), {
      env: 'ACFT_POOL_MAX_CANDIDATES',
      path: 'pool.maxCandidates',
      default: '10000',
      description: 'Most unlabeled candidates kept; beyond it the oldest low-score ones are evicted.',
      expects: 'a positive integer',
    });
    assert.equal(find('ACFT_LIMITS_MAX_PAYLOAD_BYTES')?.default, '1048576 (1 MiB)');
    assert.equal(find('ACFT_KAFKA_SESSION_TIMEOUT_MS')?.default, '30000 (30 s)');
    assert.equal(find('ACFT_MODEL_M0_PATH')?.default, '<package>/models/m0-digits');
    assert.equal(find('ACFT_KAFKA_SASL_PASSWORD')?.default, 'none');
  });
});

void describe('docs/configuration.md', () => {
  void it('is up to date with the schema (regenerate: UPDATE_DOCS=1 npm run test:unit)', async () => {
    const expected = await expectedDoc();
    if (process.env['UPDATE_DOCS'] === '1') writeFileSync(DOC, expected);
    const actual = readFileSync(DOC, 'utf8');
    assert.equal(
      actual,
      expected,
      'docs/configuration.md is stale: run UPDATE_DOCS=1 node --import tsx --test test/unit/config/reference.test.ts',
    );
    for (const o of CONFIG_OPTIONS) assert.ok(actual.includes(`\`${o.env}\``), o.env);
  });

  void it('has a file example that loads', () => {
    const block = /```json\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'))?.[1];
    assert.ok(block !== undefined);
    const c = resolveConfig({ env: {}, file: { path: 'example.json', values: JSON.parse(block) } });
    assert.equal(c.kafka.ssl.enabled, true);
    assert.equal(c.kafka.sasl?.mechanism, 'scram-sha-512');
    assert.equal(c.pool.maxCandidates, 20000);
  });
});
