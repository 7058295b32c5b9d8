/**
 * Fault tests, broker outages (issue 5, scenario 3), on a broker this file owns and stops:
 * SIGTERM and SIGKILL mid-window, a short outage (ridden out: the daemon stays up and carries on)
 * and a long one (/readyz reports unready, then the daemon exits non-zero after
 * ACFT_KAFKA_OUTAGE_EXIT_AFTER_MS; restarted with the broker, it restores its state and goes on).
 * Each ends with FaultScenario.verify. `npm run test:faults`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FaultScenario } from '../support/fault-scenario.js';
import { OwnedBroker } from '../support/owned-broker.js';
import type { DaemonProcess } from '../support/daemon-process.js';

const broker = new OwnedBroker();
before(() => broker.start());
after(() => broker.cleanup());

async function readyz(d: DaemonProcess): Promise<{ status: number; body: string }> {
  const r = await fetch(`${await d.url()}/readyz`);
  return { status: r.status, body: await r.text() };
}

/** Runs until the daemon is mid-window (labels coming in, a version out), ready for an outage. */
async function midWindow(s: FaultScenario, extra: Record<string, string> = {}): Promise<DaemonProcess> {
  const d = await s.startDaemon(extra);
  await d.waitForEvent('started');
  await s.collect();
  s.startOracle();
  await s.sendCandidates(0, 40);
  await s.waitFor('a first version', () => s.versions.length >= 1, 180_000, d);
  return d;
}

async function finish(s: FaultScenario, d: DaemonProcess, scenario: string, extra: Record<string, unknown>) {
  const versions = s.versions.length;
  await s.sendCandidates(40, 30);
  await s.waitFor('a version after the outage', () => s.versions.length > versions, 240_000, d);
  await s.stopOracle();
  await s.waitAllCommitted();
  const exit = await d.stop();
  assert.equal(exit.code, 0, `graceful stop:\n${d.tail()}`);
  const counts = await s.verify();
  s.report(scenario, counts, extra);
}

describe('broker outages', { timeout: 1_800_000 }, () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`a short outage (broker ${signal}, 5 s) is ridden out`, async () => {
      const s = new FaultScenario(broker.brokers, `outage-short-${signal.toLowerCase()}`);
      try {
        const d = await midWindow(s);
        await broker.stop(signal);
        await new Promise((r) => setTimeout(r, 5_000));
        await broker.start();
        assert.ok(d.running, 'the daemon rode the outage out');
        await finish(s, d, `broker ${signal}, short outage`, { daemonExits: 0 });
        assert.equal(d.events('started').length, 1);
      } finally {
        await s.cleanup();
      }
    });
  }

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`a long outage (broker ${signal}): unready, then exit 70; restarted, the daemon restores its state`, async () => {
      const s = new FaultScenario(broker.brokers, `outage-long-${signal.toLowerCase()}`);
      const quick = {
        ACFT_KAFKA_RETRY_RETRIES: '2',
        ACFT_KAFKA_RETRY_INITIAL_RETRY_TIME_MS: '200',
        ACFT_KAFKA_RETRY_MAX_RETRY_TIME_MS: '1000',
        ACFT_KAFKA_OUTAGE_EXIT_AFTER_MS: '15000',
      };
      try {
        const d1 = await midWindow(s, quick);
        await broker.stop(signal);
        const down = Date.now();
        let unready: { status: number; body: string } | undefined;
        while (d1.running && Date.now() - down < 120_000) {
          const r = await readyz(d1).catch(() => undefined);
          if (r && r.status === 503 && r.body.includes('Kafka brokers unreachable')) unready ??= r;
          await new Promise((res) => setTimeout(res, 250));
        }
        const exit = await d1.exited;
        assert.ok(unready, `/readyz reported unready before the exit:\n${d1.tail()}`);
        assert.equal(exit.code, 70, `exit code:\n${d1.tail()}`);
        const exitedAfterMs = Date.now() - down;
        assert.ok(d1.events('outage').length === 1 || d1.events('fatal').length === 1);
        await s.stopOracle();
        const before = await s.digest();
        await broker.start();
        const d2 = await s.startDaemon(quick);
        await FaultScenario.assertRestored(d2, before);
        await d2.waitForEvent('started');
        s.startOracle();
        await finish(s, d2, `broker ${signal}, long outage`, { exitCode: exit.code, exitedAfterMs });
      } finally {
        await s.cleanup();
      }
    });
  }
});
