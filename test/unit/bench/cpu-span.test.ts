/**
 * The CPU figures of the ingest benchmark (scripts/bench-daemon/support.ts): the main thread's
 * running and waiting time from schedstat, the process's from process.cpuUsage(), per message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpuSpan, sampleCpu, type CpuSample } from '../../../scripts/bench-daemon/support.js';

void describe('cpuSpan', () => {
  void it('turns two samples into cores, shares and microseconds per message', () => {
    const from: CpuSample = { at: 1000, mainRunNs: 5e9, mainWaitNs: 1e9, processMicros: 9e6 };
    // 0.5 s later: the main thread ran 0.3 s and waited 0.1 s; the process used 0.8 s.
    const to: CpuSample = { at: 1500, mainRunNs: 5.3e9, mainWaitNs: 1.1e9, processMicros: 9.8e6 };
    assert.deepEqual(cpuSpan(from, to, 1000), {
      seconds: 0.5,
      mainCores: 0.6,
      mainWaitShare: 0.2,
      processCores: 1.6,
      mainMicrosPerMessage: 300,
      processMicrosPerMessage: 800,
    });
  });

  void it('is null without both samples, messages or time between them', () => {
    const s: CpuSample = { at: 1, mainRunNs: 0, mainWaitNs: 0, processMicros: 0 };
    assert.equal(cpuSpan(undefined, s, 10), null);
    assert.equal(cpuSpan(s, undefined, 10), null);
    assert.equal(cpuSpan(s, { ...s, at: 2 }, 0), null);
    assert.equal(cpuSpan(s, s, 10), null);
  });
});

void describe('sampleCpu', () => {
  void it('reads growing counters where /proc has schedstat, and nothing elsewhere', (t) => {
    const a = sampleCpu();
    if (process.platform !== 'linux') {
      assert.equal(a, undefined);
      return;
    }
    if (a === undefined) {
      // A Linux kernel built without schedstat: the benchmark reports no CPU figures then.
      t.diagnostic('no /proc/<pid>/task/<pid>/schedstat on this kernel');
      return;
    }
    let x = 0;
    for (let i = 0; i < 3e7; i++) x = (x * 1103515245 + 12345) | 0;
    const b = sampleCpu()!;
    assert.ok(x !== 0.5);
    assert.ok(b.at > a.at);
    assert.ok(b.mainRunNs > a.mainRunNs, 'the main thread ran');
    assert.ok(b.mainWaitNs >= a.mainWaitNs);
    assert.ok(b.processMicros > a.processMicros);
    const span = cpuSpan(a, b, 1)!;
    assert.ok(span.mainCores > 0 && span.mainCores <= 1.05, `main cores ${span.mainCores}`);
  });
});
