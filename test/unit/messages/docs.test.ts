import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEAD_LETTER_REASONS,
  DEFAULT_MESSAGE_LIMITS,
  parseCandidate,
  parseDeadLetter,
  parseFeedback,
  parseLabelingRequest,
  parseModelVersion,
  type ParseResult,
} from '../../../src/messages/index.js';

const DOC = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'docs',
  'messages.md',
);
const text = readFileSync(DOC, 'utf8');

const parsers: Record<string, (value: string) => ParseResult<unknown>> = {
  'acft.candidate/v1': (v) => parseCandidate(v, { limits: DEFAULT_MESSAGE_LIMITS }),
  'acft.feedback/v1': (v) => parseFeedback(v, { numClasses: 2 }),
  'acft.labeling-request/v1': (v) => parseLabelingRequest(v, { numClasses: 2 }),
  'acft.model-version/v1': (v) => parseModelVersion(v),
  'acft.dead-letter/v1': (v) => parseDeadLetter(v),
};

void describe('docs/messages.md', () => {
  void it('has examples that parse, at least one per message', () => {
    const blocks = [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    const seen = new Set<string>();
    for (const block of blocks) {
      const schema = (JSON.parse(block) as { schema: string }).schema;
      const parse = parsers[schema];
      assert.ok(parse, `no parser for ${schema}`);
      const result = parse(block);
      assert.ok(result.ok, result.ok ? '' : `${schema}: ${result.reason}: ${result.error}`);
      seen.add(schema);
    }
    assert.deepEqual([...seen].sort(), Object.keys(parsers).sort());
  });

  void it('documents every dead-letter reason', () => {
    for (const reason of DEAD_LETTER_REASONS) assert.ok(text.includes(`| \`${reason}\``), reason);
  });
});
