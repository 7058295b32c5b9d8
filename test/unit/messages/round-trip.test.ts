import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  createDeadLetter,
  DEAD_LETTER_REASONS,
  encodeCandidate,
  encodeDeadLetter,
  encodeFeedback,
  encodeLabelingRequest,
  encodeModelVersion,
  FEEDBACK_SOURCES,
  IDENTIFIER_KEY_PATTERN,
  parseCandidate,
  parseDeadLetter,
  parseFeedback,
  parseLabelingRequest,
  parseModelVersion,
  type Candidate,
  type CandidateImage,
  type CandidatePatches,
  type LabelingRequestMessage,
  type ModelVersionMessage,
  type FeedbackMessage,
  type MessageLimits,
} from '../../../src/messages/index.js';
import { STRATEGY_CODES } from '../../../src/core/strategies.js';
import type { Rotation } from '../../../src/core/patches.js';

const roomy: MessageLimits = {
  maxPayloadBytes: 16 << 20,
  maxPatches: 1 << 20,
  maxImageSide: 64,
  maxChannels: 8,
};

/** JSON cannot carry -0; valid messages never hold it. */
const plain = (x: number): number => (Object.is(x, -0) ? 0 : x);
const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map(plain);
const unit = fc.double({ min: 0, max: 1, noNaN: true }).map(plain);

const id = fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/);
const time = fc.oneof(
  fc
    .date({
      min: new Date('1970-01-01T00:00:00Z'),
      max: new Date('2200-01-01T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  fc
    .tuple(
      fc.integer({ min: 1970, max: 2100 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 28 }),
      fc.integer({ min: 0, max: 23 }),
      fc.constantFrom('Z', '+05:30', '-08:00'),
    )
    .map(
      ([y, mo, d, h, z]) =>
        `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00${z}`,
    ),
);
const sourceRefs = fc.dictionary(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/).filter((k) => !IDENTIFIER_KEY_PATTERN.test(k)),
  fc.stringMatching(/^[\x20-\x7e]{1,256}$/),
  { maxKeys: 16, noNullPrototype: true },
);

const dims = (n: number, max: number) =>
  fc.array(fc.integer({ min: 1, max }), { minLength: n, maxLength: n });

function pixels(
  dtype: 'uint8' | 'uint16' | 'float32',
  n: number,
): fc.Arbitrary<Uint8Array | Uint16Array | Float32Array> {
  if (dtype === 'uint8') return fc.uint8Array({ minLength: n, maxLength: n });
  if (dtype === 'uint16') return fc.uint16Array({ minLength: n, maxLength: n });
  return fc.float32Array({ min: 0, max: 1, noNaN: true, minLength: n, maxLength: n });
}

const dtype = fc.constantFrom('uint8' as const, 'uint16' as const, 'float32' as const);

const patches: fc.Arbitrary<CandidatePatches> = fc.tuple(dtype, dims(4, 5)).chain(([dt, shape]) =>
  pixels(
    dt,
    shape.reduce((a, b) => a * b, 1),
  ).map((data): CandidatePatches => ({
    kind: 'patches',
    dtype: dt,
    shape: shape as [number, number, number, number],
    data,
  })),
);

const augmentation = fc.record(
  {
    size: fc.integer({ min: 1, max: 64 }),
    scales: fc
      .uniqueArray(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 4 })
      .map((a) => a.map((x) => x / 100)),
    translations: fc
      .uniqueArray(fc.integer({ min: -100, max: 100 }), { minLength: 1, maxLength: 4 })
      .map((a) => a.map((x) => x / 100)),
    flips: fc.boolean(),
    rotations: fc.subarray([0, 90, 180, 270] as Rotation[], { minLength: 1 }),
    m: fc.integer({ min: 1, max: 64 }),
    includeIdentity: fc.boolean(),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const image: fc.Arbitrary<CandidateImage> = fc.tuple(dtype, dims(3, 8)).chain(([dt, shape]) => {
  const [h, w] = shape as [number, number, number];
  const roi = fc
    .tuple(fc.integer({ min: 0, max: w - 1 }), fc.integer({ min: 0, max: h - 1 }))
    .chain(([x, y]) =>
      fc.record(
        {
          x: fc.constant(x),
          y: fc.constant(y),
          width: fc.integer({ min: 1, max: w - x }),
          height: fc.integer({ min: 1, max: h - y }),
        },
        { noNullPrototype: true },
      ),
    );
  return fc
    .record(
      {
        data: pixels(
          dt,
          shape.reduce((a, b) => a * b, 1),
        ),
        roi,
        augmentation,
      },
      { requiredKeys: ['data'], noNullPrototype: true },
    )
    .map((r): CandidateImage => ({
      kind: 'image',
      dtype: dt,
      shape: shape as [number, number, number],
      ...r,
    }));
});

const candidate: fc.Arbitrary<Candidate> = fc.record(
  { id, sourceRefs, time, content: fc.oneof(patches, image) },
  { noNullPrototype: true },
);

const feedback: fc.Arbitrary<FeedbackMessage> = fc.record(
  {
    schema: fc.constant('acft.feedback/v1' as const),
    candidateId: id,
    label: fc.integer({ min: 0, max: 9 }),
    annotatorId: id,
    time,
    requestId: id,
    source: fc.constantFrom(...FEEDBACK_SOURCES),
  },
  { requiredKeys: ['schema', 'candidateId', 'label', 'annotatorId', 'time'], noNullPrototype: true },
);

const labelingRequest: fc.Arbitrary<LabelingRequestMessage> = fc
  .array(unit, { minLength: 2, maxLength: 10 })
  .chain((meanProbs) =>
    fc.record(
      {
        schema: fc.constant('acft.labeling-request/v1' as const),
        requestId: id,
        candidateId: id,
        modelVersion: id,
        scores: fc.record(
          {
            score: finite,
            entropy: finite.map(Math.abs),
            diversity: finite.map(Math.abs),
            dominantClass: fc.integer({ min: 0, max: meanProbs.length - 1 }),
            meanProbs: fc.constant(meanProbs),
          },
          { noNullPrototype: true },
        ),
        rank: fc.nat(),
        drawProbability: unit,
        shortlistSize: fc.integer({ min: 1, max: 1_000_000 }),
        takenBy: fc.constantFrom('draw' as const, 'rank' as const),
        criterion: fc.constantFrom('entropy' as const, 'diversity' as const),
        leaseExpiresAt: time,
        time,
      },
      {
        requiredKeys: [
          'schema',
          'requestId',
          'candidateId',
          'modelVersion',
          'scores',
          'rank',
          'drawProbability',
          'shortlistSize',
          'criterion',
          'leaseExpiresAt',
          'time',
        ],
        noNullPrototype: true,
      },
    ),
  );

const nullableAuc = fc.option(unit, { nil: null });
const modelVersion: fc.Arbitrary<ModelVersionMessage> = fc.record(
  {
    schema: fc.constant('acft.model-version/v1' as const),
    version: id,
    parent: fc.option(id, { nil: null }),
    strategy: fc.constantFrom(...STRATEGY_CODES),
    status: fc.constantFrom('promoted' as const, 'rejected' as const),
    counts: fc.record(
      { q: fc.nat(), h: fc.nat(), labeled: fc.nat(), holdout: fc.nat() },
      { noNullPrototype: true },
    ),
    trainedOn: fc.array(id, { maxLength: 20 }),
    metrics: fc
      .tuple(
        nullableAuc,
        nullableAuc,
        fc.dictionary(fc.stringMatching(/^extra[A-Za-z0-9]{0,12}$/), fc.option(finite, { nil: null }), {
          maxKeys: 4,
          noNullPrototype: true,
        }),
      )
      .map(([holdoutAuc, parentHoldoutAuc, extra]) => ({ ...extra, holdoutAuc, parentHoldoutAuc })),
    artifact: fc.record(
      {
        location: fc.string({ minLength: 1, maxLength: 200 }),
        sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
      },
      { noNullPrototype: true },
    ),
    windowStartedAt: time,
    time,
  },
  { noNullPrototype: true },
);

void describe('encode -> parse round-trips arbitrary valid messages', () => {
  void it('candidate (patches or image, every dtype)', () => {
    fc.assert(
      fc.property(candidate, (c) => {
        const r = parseCandidate(encodeCandidate(c), { limits: roomy, key: c.id });
        if (!r.ok) throw new Error(`${r.reason}: ${r.error}`);
        assert.deepStrictEqual(r.value, c);
      }),
      { numRuns: 300 },
    );
  });

  void it('feedback', () => {
    fc.assert(
      fc.property(feedback, (f) => {
        assert.deepStrictEqual(parseFeedback(encodeFeedback(f), { numClasses: 10, key: f.candidateId }), {
          ok: true,
          value: f,
        });
      }),
    );
  });

  void it('labeling request', () => {
    fc.assert(
      fc.property(labelingRequest, (r) => {
        assert.deepStrictEqual(parseLabelingRequest(encodeLabelingRequest(r)), { ok: true, value: r });
      }),
    );
  });

  void it('model version', () => {
    fc.assert(
      fc.property(modelVersion, (v) => {
        assert.deepStrictEqual(parseModelVersion(encodeModelVersion(v)), { ok: true, value: v });
      }),
    );
  });

  void it('dead letter, whose payload never carries a source reference', () => {
    const marker = 'SECRET';
    const payload = fc.oneof(
      candidate.map((c) => encodeCandidate({ ...c, sourceRefs: { study: `${marker}-${c.id}` } })),
      candidate.map((c) => encodeCandidate({ ...c, sourceRefs: { study: marker } }).slice(0, 200)),
      fc.string(),
      fc.uint8Array(),
    );
    fc.assert(
      fc.property(
        payload,
        fc.constantFrom(...DEAD_LETTER_REASONS),
        fc.string(),
        fc.nat(),
        fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
        fc.integer({ min: 16, max: 8192 }),
        (value, reason, error, partition, offset, maxPayloadBytes) => {
          const dl = createDeadLetter({
            source: { topic: 'acft.candidates', partition, offset },
            reason,
            error,
            payload: value,
            maxPayloadBytes,
          });
          if (typeof value === 'string' && value.includes(`"study":"${marker}`))
            assert.ok(!dl.payload.data.includes(marker));
          assert.ok(
            Buffer.byteLength(dl.payload.data, dl.payload.encoding === 'base64' ? 'base64' : 'utf8') <=
              maxPayloadBytes,
          );
          assert.deepStrictEqual(parseDeadLetter(encodeDeadLetter(dl)), { ok: true, value: dl });
        },
      ),
    );
  });
});
