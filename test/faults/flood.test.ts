/**
 * Fault test, a flood (issue 5, scenario 8): 100,000 candidates into a pool bounded at 10,000.
 * Memory stays bounded (the daemon's RSS, sampled from /proc), intake pauses at the pool's high
 * watermark and every partition resumes, and nothing is skipped: every message is ingested (the
 * candidates counter), the group's offsets reach the end of every partition, and every candidate
 * is accounted for by id (pooled, or evicted by the pool bound and logged with its id).
 * `npm run test:faults` (minutes on 2 cores).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { FaultScenario } from '../support/fault-scenario.js';
import { useKafka } from '../support/kafka.js';

const kafka = useKafka();
const TOTAL = 100_000;
const POOL = 10_000;

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) / 1024;
}

function metric(exposition: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(exposition);
  return m ? Number(m[1]) : NaN;
}

describe('a flood of candidates', { timeout: 1_800_000 }, () => {
  it(`${TOTAL} candidates into a pool of ${POOL}: bounded memory, every partition resumes, nothing skipped`, async () => {
    const s = new FaultScenario(kafka.brokers, 'flood', {
      ACFT_POOL_MAX_CANDIDATES: String(POOL),
      ACFT_SELECTION_B: '25',
    });
    try {
      const d = await s.startDaemon();
      await d.waitForEvent('started');
      const url = await d.url();
      const producing = (async () => {
        for (let from = 0; from < TOTAL; from += 2_000) await s.sendCandidates(from, 2_000);
      })();
      let maxPool = 0;
      let maxRss = 0;
      let ingested = 0;
      let sawPaused = false;
      const started = Date.now();
      const rssAt: number[] = [];
      while (ingested < TOTAL) {
        assert.ok(d.running, `the daemon died:\n${d.tail()}`);
        assert.ok(Date.now() - started < 1_500_000, `only ${ingested} ingested:\n${d.tail()}`);
        const text = await (await fetch(`${url}/metrics`)).text();
        ingested = metric(text, 'acft_candidates_ingested_total') || 0;
        maxPool = Math.max(maxPool, metric(text, 'acft_pool_candidates') || 0);
        sawPaused ||= metric(text, 'acft_pool_paused') === 1;
        const rss = await rssMiB(d.pid);
        maxRss = Math.max(maxRss, rss);
        rssAt.push(rss);
        await new Promise((r) => setTimeout(r, 1_000));
      }
      await producing;
      await s.waitFor(
        'intake resumed',
        () => d.events('resumed').length >= d.events('paused').length,
        120_000,
        d,
      );
      const exit = await d.stop();
      assert.equal(exit.code, 0);
      // Every partition committed to its end: nothing skipped, every partition resumed.
      await s.assertAllCommitted();
      assert.equal(ingested, TOTAL, 'every candidate ingested once');
      assert.ok(maxPool <= POOL, `pool reached ${maxPool}`);
      assert.ok(sawPaused || d.events('paused').length > 0, 'intake paused under the flood');
      // Bounded: the RSS of the second half of the run is no more than 1.5x that of the first half's peak.
      const half = Math.floor(rssAt.length / 2);
      const firstPeak = Math.max(...rssAt.slice(0, half));
      const secondPeak = Math.max(...rssAt.slice(half));
      assert.ok(secondPeak < firstPeak * 1.5, `RSS grows: ${firstPeak} MiB then ${secondPeak} MiB`);
      assert.ok(maxRss < 2_048, `RSS ${maxRss} MiB`);
      // Every one of the 100,000 accounted for by id: pooled, or evicted by the pool bound.
      const counts = await s.verify();
      assert.equal(counts.accounting.candidatesAccounted, TOTAL);
      s.report('flood 100k into a pool of 10k', counts, {
        ingested,
        maxPool,
        maxRssMiB: Math.round(maxRss),
        rssFirstHalfPeakMiB: Math.round(firstPeak),
        rssSecondHalfPeakMiB: Math.round(secondPeak),
        pauses: d.events('paused').length,
        resumes: d.events('resumed').length,
        seconds: Math.round((Date.now() - started) / 1000),
      });
    } finally {
      await s.cleanup();
    }
  });
});
