/**
 * The hand-checked fast path of the candidate schema must never disagree with the schema: whatever
 * it accepts, zod accepts with the same result; and it does accept the common case (else it saves
 * nothing).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { candidateMessageSchema, fastCandidateMessage } from '../../../src/messages/candidate.js';

const validId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/);
const anyString = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('', ' ', 'a b', 'é', 'x'.repeat(129)),
);
const validTime = fc
  .date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const time = fc.oneof(
  validTime,
  fc.constantFrom(
    '2025-01-31T12:00:00+05:30',
    '2025-01-31T12:00:00',
    '2025-13-01T00:00:00Z',
    '2025-02-30T00:00:00Z',
    'yesterday',
  ),
);
const refKey = fc.oneof(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,10}$/),
  fc.constantFrom('study', 'series', 'patientName', 'mrn', '9lives', '', 'a b', '__proto__', 'x'.repeat(70)),
);
const refValue = fc.oneof(
  fc.stringMatching(/^[\x20-\x7e]{1,20}$/),
  fc.constantFrom('', 'ü', 'x'.repeat(257)),
  fc.integer(),
);
const sourceRefs = fc.dictionary(refKey, refValue, { maxKeys: 18 });
const dim = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(0, -1, 1.5, 2 ** 53, '3', null));
const shape = fc.oneof(fc.array(dim, { minLength: 2, maxLength: 5 }), fc.constant('28x28'));
const dtype = fc.constantFrom('uint8', 'uint16', 'float32', 'int32', 'UINT8', 7);
const data = fc.oneof(fc.base64String({ maxLength: 16 }), fc.constantFrom(1, null, ['a']));
const extras = fc.record(
  {
    roi: fc.constant({ x: 0, y: 0, width: 2, height: 2 }),
    augmentation: fc.constant({ m: 2 }),
    extra: fc.integer(),
  },
  { requiredKeys: [] },
);
const tensor = fc
  .tuple(fc.record({ dtype, shape, data }, { requiredKeys: [] }), fc.option(extras, { nil: undefined }))
  .map(([t, x]) => ({ ...t, ...x }));
const message = fc
  .record(
    {
      schema: fc.constantFrom('acft.candidate/v1', 'acft.candidate/v2', 1),
      id: fc.oneof(validId, anyString, fc.integer()),
      sourceRefs: fc.oneof(sourceRefs, fc.constantFrom(null, [], 'refs')),
      time,
      patches: tensor,
      image: tensor,
      unknown: fc.integer(),
    },
    { requiredKeys: [] },
  )
  .map((m) => JSON.parse(JSON.stringify(m)) as unknown);

/** What a CAD system usually sends: valid, no ROI, no augmentation. */
const common = fc
  .record({
    id: validId,
    time: validTime,
    refs: fc.option(
      fc.dictionary(fc.constantFrom('study', 'series', 'instance'), fc.stringMatching(/^[0-9.]{1,64}$/), {
        minKeys: 1,
      }),
      { nil: undefined },
    ),
    kind: fc.constantFrom('image', 'patches'),
    dtype: fc.constantFrom('uint8', 'uint16', 'float32'),
    dims: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 4, maxLength: 4 }),
  })
  .map(
    ({ id, time, refs, kind, dtype, dims }) =>
      JSON.parse(
        JSON.stringify({
          schema: 'acft.candidate/v1',
          id,
          ...(refs !== undefined ? { sourceRefs: refs } : {}),
          time,
          [kind]: { dtype, shape: kind === 'image' ? dims.slice(1) : dims, data: 'AAAA' },
        }),
      ) as unknown,
  );

/** A common candidate with one thing changed: a field replaced by an arbitrary one, or removed. */
const mutated = fc
  .tuple(
    common,
    fc.constantFrom(
      'schema',
      'id',
      'sourceRefs',
      'time',
      'tensor',
      'dtype',
      'shape',
      'data',
      'extra',
      'both',
      'identifier-key',
      'many-refs',
      'bad-dim',
    ),
    fc.oneof(message, sourceRefs, tensor, shape, dtype, data, time, anyString, fc.constant(undefined)),
  )
  .map(([m, field, value]) => {
    const c = m as Record<string, unknown>;
    const kind = 'image' in c ? 'image' : 'patches';
    const t = c[kind] as Record<string, unknown>;
    const dims = t['shape'] as unknown[];
    if (field === 'identifier-key') c['sourceRefs'] = { study: '1.2', patientName: '1' };
    else if (field === 'many-refs')
      c['sourceRefs'] = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`r${i}`, '1']));
    else if (field === 'bad-dim') dims[dims.length - 1] = [0, -1, 1.5, 2 ** 53][dims.length % 4];
    else if (field === 'tensor') c[kind] = value;
    else if (field === 'dtype' || field === 'shape' || field === 'data') t[field] = value;
    else if (field === 'extra') t['roi'] = value;
    else if (field === 'both') c[kind === 'image' ? 'patches' : 'image'] = value ?? t;
    else c[field] = value;
    return JSON.parse(JSON.stringify(c) ?? 'null') as unknown;
  });

describe('fastCandidateMessage', () => {
  it('accepts only what the schema accepts, with the same result', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(message, common, mutated, mutated), (m) => {
        const fast = fastCandidateMessage(m);
        if (fast === undefined) return;
        accepted++;
        const slow = candidateMessageSchema.safeParse(m);
        assert.ok(slow.success, `the fast path took what the schema refuses: ${JSON.stringify(m)}`);
        assert.deepEqual(fast, slow.data);
      }),
      { numRuns: 6000, seed: 61 },
    );
    assert.ok(accepted > 300, `only ${accepted} messages took the fast path: the property says little`);
  });

  it('takes the common case: a valid candidate without ROI or augmentation', () => {
    fc.assert(
      fc.property(common, (m) => {
        assert.notEqual(fastCandidateMessage(m), undefined, JSON.stringify(m));
      }),
      { numRuns: 500, seed: 62 },
    );
  });
});
