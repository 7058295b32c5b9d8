import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  createLogger,
  REDACTED,
  safeError,
  scrubMessage,
  type LoggerConfig,
} from '../../../src/observability/logger.js';

const SOURCE_REF = '1.2.840.113619.2.55.3.604688119.971.1712345678.123';
const SASL_PASSWORD = 'sasl-s3cret-hunter2';
const TLS_KEY = '-----BEGIN PRIVATE KEY-----MIIEvQ';

/** A logger writing into memory; `lines()` parses what it wrote, `text()` is the raw output. */
function memoryLogger(config: Partial<LoggerConfig> = {}) {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'trace',
    destination: { write: (chunk) => chunks.push(chunk) },
    ...config,
  });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, text, lines };
}

void describe('createLogger', () => {
  void it('writes one JSON line per call with level, time, service and message', () => {
    const { logger, lines } = memoryLogger();
    logger.info({ event: 'broker.connected', brokers: 1 }, 'connected to the broker');
    const [line, ...rest] = lines();
    assert.equal(rest.length, 0);
    assert.equal(line?.level, 'info');
    assert.equal(line?.service, 'acft');
    assert.equal(line?.event, 'broker.connected');
    assert.equal(line?.msg, 'connected to the broker');
    assert.ok(!Number.isNaN(Date.parse(String(line?.time))));
  });

  void it('honours the level', () => {
    const { logger, text } = memoryLogger({ level: 'warn' });
    logger.info('not written');
    logger.warn('written');
    assert.doesNotMatch(text(), /not written/);
    assert.match(text(), /written/);
  });

  void it('redacts source references at every usual depth', () => {
    const { logger, text } = memoryLogger();
    logger.info({ sourceRefs: { studyUid: SOURCE_REF } }, 'top');
    logger.info({ candidate: { id: 'c-1', sourceRefs: [SOURCE_REF] } }, 'one deep');
    logger.info({ request: { candidate: { id: 'c-2', sourceRefs: { seriesUid: SOURCE_REF } } } }, 'two deep');
    logger.info({ window: { requests: { first: { sourceRefs: SOURCE_REF } } } }, 'three deep');
    const output = text();
    assert.ok(!output.includes(SOURCE_REF), output);
    assert.ok(!output.includes('113619'), 'not even part of it');
    assert.match(output, /"id":"c-1"/, 'ids stay');
    assert.equal(output.split(REDACTED).length - 1, 4);
  });

  void it('redacts SASL passwords, TLS keys and message payloads in a logged configuration', () => {
    const { logger, text } = memoryLogger();
    const kafka = {
      brokers: ['kafka:9093'],
      sasl: { mechanism: 'scram-sha-512', username: 'acft', password: SASL_PASSWORD },
      ssl: { key: TLS_KEY, ca: 'public ca' },
    };
    logger.info({ config: { kafka } }, 'configuration');
    logger.info({ kafka }, 'kafka options');
    logger.info({ sasl: { password: SASL_PASSWORD } }, 'bare');
    logger.info({ password: SASL_PASSWORD }, 'top level');
    logger.warn({ payload: `{"sourceRefs":"${SOURCE_REF}"}`, reason: 'invalid-json' }, 'dead-lettered');
    logger.warn({ message: { key: 'c-9', value: Buffer.from(SOURCE_REF).toString() } }, 'raw message');
    const output = text();
    assert.ok(!output.includes(SASL_PASSWORD), output);
    assert.ok(!output.includes(TLS_KEY), output);
    assert.ok(!output.includes(SOURCE_REF), output);
    assert.match(output, /"username":"acft"/, 'non-secret settings stay');
    assert.match(output, /"mechanism":"scram-sha-512"/);
  });

  void it('redacts configured paths on top of the defaults', () => {
    const { logger, text } = memoryLogger({ redactPaths: ['patient.name', '*.annotatorEmail'] });
    logger.info({ patient: { name: 'Jane Doe' }, feedback: { annotatorEmail: 'dr@example.org' } }, 'custom');
    logger.info({ sourceRefs: SOURCE_REF }, 'default still on');
    const output = text();
    for (const secret of ['Jane Doe', 'dr@example.org', SOURCE_REF])
      assert.ok(!output.includes(secret), secret);
  });

  void it('rejects an invalid redaction path at creation', () => {
    assert.throws(() =>
      createLogger({ level: 'info', redactPaths: ['a..b'], destination: { write: () => {} } }),
    );
  });

  void it('never writes an error payload, whether the error is logged alone or under err', () => {
    const { logger, text, lines } = memoryLogger();
    let parseError: unknown;
    try {
      JSON.parse(`x${SOURCE_REF}`);
    } catch (error) {
      parseError = error;
    }
    // V8 quotes the start of the input it failed on: the raw message would leak it.
    assert.match((parseError as Error).message, /1\.2\.840/);
    const wrapped = Object.assign(new Error('message rejected', { cause: parseError }), {
      code: 'INVALID_JSON',
      retriable: false,
      payload: SOURCE_REF,
      kafkaMessage: { value: SOURCE_REF },
    });
    logger.error(parseError as Error);
    logger.error({ err: wrapped, event: 'dead-letter' });
    logger.error({ err: wrapped }, 'routed to dead-letter');
    const output = text();
    assert.ok(!output.includes('1.2.840'), output);
    const [alone, underErr, withMessage] = lines();
    assert.equal((alone?.err as { type?: string }).type, 'SyntaxError');
    assert.equal(typeof alone?.msg, 'string');
    assert.deepEqual(
      { type: (underErr?.err as { type?: string }).type, code: (underErr?.err as { code?: string }).code },
      { type: 'Error', code: 'INVALID_JSON' },
    );
    assert.equal(underErr?.msg, 'message rejected');
    assert.equal(withMessage?.msg, 'routed to dead-letter');
  });
});

void describe('safeError', () => {
  void it('keeps type, code, retry verdict, scrubbed message, stack frames and cause', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' });
    const error = Object.assign(new Error('broker unreachable', { cause }), {
      name: 'BrokerError',
      code: 'BROKER_DOWN',
      retriable: true,
      config: { sasl: { password: SASL_PASSWORD } },
    });
    const safe = safeError(error);
    assert.equal(safe.type, 'BrokerError');
    assert.equal(safe.message, 'broker unreachable');
    assert.equal(safe.code, 'BROKER_DOWN');
    assert.equal(safe.retriable, true);
    assert.match(safe.stack ?? '', /^\s+at /);
    assert.ok(!(safe.stack ?? '').includes('broker unreachable'), 'the stack does not repeat the message');
    assert.deepEqual(
      { type: safe.cause?.type, code: (safe.cause as { code?: string }).code },
      { type: 'Error', code: 'ECONNREFUSED' },
    );
    assert.ok(!JSON.stringify(safe).includes(SASL_PASSWORD));
  });

  void it('serializes thrown non-errors and deep or aggregate causes without failing', () => {
    assert.deepEqual(safeError(`raw ${SOURCE_REF}`), { type: 'string', message: 'non-error value thrown' });
    let deep: Error = new Error('root');
    for (let i = 0; i < 10; i++) deep = new Error(`level ${i}`, { cause: deep });
    assert.doesNotThrow(() => JSON.stringify(safeError(deep)));
    const aggregate = safeError(new AggregateError([new Error('a'), new TypeError('b')], 'two failed'));
    assert.deepEqual(
      aggregate.errors?.map((inner) => inner.type),
      ['Error', 'TypeError'],
    );
  });
});

void describe('scrubMessage', () => {
  void it('removes quoted input, long data runs and excess length, keeps the rest', () => {
    assert.equal(
      scrubMessage(`Unexpected token 'o', "{"a": "${SOURCE_REF}"}" is not valid JSON`).includes(SOURCE_REF),
      false,
    );
    assert.equal(
      scrubMessage('base64 data QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789 here'),
      'base64 data [data] here',
    );
    assert.equal(scrubMessage("can't reach the broker"), "can't reach the broker");
    assert.equal(scrubMessage("unknown topic 'candidates'"), "unknown topic '…'");
    assert.ok(scrubMessage('x'.repeat(1000)).length <= 301);
    assert.equal(scrubMessage('Unexpected end of JSON input'), 'Unexpected end of JSON input');
    assert.equal(
      scrubMessage(`Unexpected token 'h', "hello 1.2."... is not valid JSON`),
      `Unexpected token '…', "…"... is not valid JSON`,
    );
    assert.equal(scrubMessage(`unterminated "${SOURCE_REF}`), 'unterminated "…');
  });
});
