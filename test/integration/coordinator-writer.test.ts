/**
 * The coordinator's transactional writer on a real broker: a ledger + requests write is all or
 * nothing for read-committed consumers, and a second writer with the same transactional id fences
 * the first, whose next write is refused (never retried) and leaves nothing visible.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Consumer } from 'kafkajs';
import {
  CoordinatorFencedError,
  CoordinatorWriter,
  coordinatorTransactionalId,
} from '../../src/daemon/coordinator-writer.js';
import { uniqueTopic, useKafka } from '../support/kafka.js';
import { patience } from '../support/patience.js';

const kafka = useKafka();

/** Every value on the topics, as a consumer with the given isolation reads them. */
async function readAll(topics: string[], readUncommitted: boolean): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>(topics.map((t) => [t, []]));
  const consumer: Consumer = await kafka.consumer({
    groupId: uniqueTopic('read'),
    readUncommitted,
    maxWaitTimeInMs: 100,
  });
  const admin = await kafka.admin();
  const ends = new Map<string, number>();
  for (const t of topics) ends.set(t, Number((await admin.fetchTopicOffsets(t))[0]?.high ?? 0));
  const read = new Map<string, number>();
  await consumer.subscribe({ topics, fromBeginning: true });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) =>
    read.set(payload.topic, Number(payload.lastOffset) + 1),
  );
  await consumer.run({
    eachMessage: ({ topic, message }) => {
      seen.get(topic)?.push(message.value?.toString() ?? '');
      return Promise.resolve();
    },
  });
  const budget = patience(30_000);
  while (topics.some((t) => (read.get(t) ?? 0) < (ends.get(t) ?? 0))) {
    if (budget.expired()) throw new Error('topics not read to their ends');
    await new Promise((r) => setTimeout(r, 100));
  }
  await consumer.disconnect();
  return seen;
}

void describe('coordinator writer on a real broker', { timeout: 120_000 }, () => {
  /** A writer closed with the suite's clients. */
  async function open(group: string): Promise<CoordinatorWriter> {
    const writer = await CoordinatorWriter.open(kafka.kafka, {
      transactionalId: coordinatorTransactionalId(group),
      transactionTimeoutMs: 60_000,
    });
    kafka.track({ disconnect: () => writer.close() });
    return writer;
  }

  void it('a ledger + requests transaction is all or nothing', async () => {
    const ledger = uniqueTopic('ledger');
    const requests = uniqueTopic('requests');
    const admin = await kafka.admin();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: ledger, numPartitions: 1, replicationFactor: 1 },
        // A request larger than this is refused by the broker, after the ledger part was accepted.
        {
          topic: requests,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: '200' }],
        },
      ],
    });
    const group = uniqueTopic('group');
    const writer = await open(group);
    await assert.rejects(
      writer.write([
        { topic: ledger, messages: [{ key: 'c1', value: 'requested c1 (refused)' }] },
        { topic: requests, messages: [{ key: 'c1', value: 'x'.repeat(1_000) }] },
      ]),
    );
    // A failed write ends the writer's term; the next term writes with a new one.
    assert.equal(writer.usable, false);
    await (
      await open(group)
    ).write([
      { topic: ledger, messages: [{ key: 'c2', value: 'requested c2' }] },
      { topic: requests, messages: [{ key: 'c2', value: 'request c2' }] },
    ]);

    const committed = await readAll([ledger, requests], false);
    assert.deepEqual(committed.get(ledger), ['requested c2']);
    assert.deepEqual(committed.get(requests), ['request c2']);
    // The refused transaction did write its ledger part: it is there, aborted.
    const uncommitted = await readAll([ledger, requests], true);
    assert.deepEqual(uncommitted.get(ledger), ['requested c1 (refused)', 'requested c2']);
  });

  void it("a successor's writer fences the first: its write is refused and nothing of it is visible", async () => {
    const topic = uniqueTopic('versions');
    const admin = await kafka.admin();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
    });
    const group = uniqueTopic('group');
    const first = await open(group);
    await first.write([{ topic, messages: [{ key: 'v1', value: 'v1 by the first' }] }]);
    const second = await open(group);
    await assert.rejects(
      first.write([{ topic, messages: [{ key: 'v2', value: 'v2 by the first' }] }]),
      (e) => {
        assert.ok(e instanceof CoordinatorFencedError, String(e));
        return true;
      },
    );
    assert.equal(first.usable, false);
    // Refused at once afterwards, without asking the broker again.
    await assert.rejects(first.write([{ topic, messages: [{ value: 'again' }] }]), CoordinatorFencedError);
    await second.write([{ topic, messages: [{ key: 'v2', value: 'v2 by the second' }] }]);
    const read = await readAll([topic], true);
    assert.deepEqual(read.get(topic), ['v1 by the first', 'v2 by the second']);
  });
});
