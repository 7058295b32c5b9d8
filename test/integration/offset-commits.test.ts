/**
 * Offset commits on a real broker: why the daemon does not take kafkajs's word for a commit.
 *
 * kafkajs's `consumer.commitOffsets` resolves without sending anything (and swallows the error of
 * a commit under way) whenever its runner is not running, as while the consumer restarts after a
 * crash or a broker outage. The daemon used to record such a commit as done and checkpoint it:
 * the restarted daemon then believed the group had committed an offset the broker never had, and
 * never committed it again ("feedback[1] committed to its end: '1' !== '2'" in the long-outage
 * fault test, issue 14). `commitConfirmed` resolves only once the broker acknowledged the commit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommitNotConfirmedError, commitConfirmed } from '../../src/daemon/kafka-client.js';
import { createTopics, uniqueTopic, useKafka } from '../support/kafka.js';

const kafka = useKafka();

async function committedOffset(topic: string, groupId: string): Promise<string> {
  const admin = await kafka.admin();
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return t!.partitions[0]!.offset;
}

describe('offset commits on a real broker', { timeout: 120_000 }, () => {
  it('kafkajs resolves a commit it never sent while its group join is under way; commitConfirmed rejects it', async () => {
    const topic = uniqueTopic('it-commits');
    const groupId = uniqueTopic('it-commits-group');
    await createTopics(kafka.brokers, [topic], 1);
    const producer = await kafka.producer();
    await producer.send({ topic, messages: [0, 1, 2, 3].map((i) => ({ key: `k${i}`, value: `v${i}` })) });
    const consumer = await kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let seen = 0;
    let all!: () => void;
    const consumed = new Promise<void>((resolve) => (all = resolve));
    await consumer.run({
      autoCommit: false,
      eachMessage: () => {
        if (++seen === 4) all();
        return Promise.resolve();
      },
    });
    await consumed;

    await commitConfirmed(consumer, [{ topic, partition: 0, offset: 2 }]);
    assert.equal(await committedOffset(topic, groupId), '2', 'a confirmed commit is on the broker');

    // kafkajs restarts a crashed consumer by running it again: from then until the group is joined
    // its runner is not running. Here the same window, opened by stopping and running it again.
    await consumer.stop();
    const rejoined = consumer.run({ autoCommit: false, eachMessage: () => Promise.resolve() });
    // Both calls while the join is under way: kafkajs's own resolves, and sends nothing...
    const raw = consumer.commitOffsets([{ topic, partition: 0, offset: '4' }]);
    const confirmed = commitConfirmed(consumer, [{ topic, partition: 0, offset: 4 }]).then(
      () => 'confirmed',
      (error: unknown) => error,
    );
    await raw;
    // ...which commitConfirmed says.
    const outcome = await confirmed;
    assert.ok(outcome instanceof CommitNotConfirmedError, `commitConfirmed: ${String(outcome)}`);
    assert.match(outcome.message, /@4/);
    assert.equal(await committedOffset(topic, groupId), '2', 'kafkajs resolved a commit it never sent');
    // Once joined, the same commit goes through.
    await rejoined;
    await commitConfirmed(consumer, [{ topic, partition: 0, offset: 4 }]);
    assert.equal(await committedOffset(topic, groupId), '4');
  });
});
