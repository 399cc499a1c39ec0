// TransitionLog on an injected clock and timer: an endpoint's first ejection and first
// revival are logged, the rest of its window only counted, and one `endpoint flapping`
// line per endpoint ends the window (or close()).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '../log.ts';
import { TransitionLog } from './transition-log.ts';

interface Line { level: string; msg: string; [k: string]: unknown }

/** A Logger that keeps every record in `lines` (synchronously). */
function recorder(lines: Line[]): Logger {
  const at = (level: string) => (obj: object, msg: string): void => void lines.push({ ...obj, level, msg });
  const log: Logger = {
    trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'),
    child: () => log, isLevelEnabled: () => true,
  };
  return log;
}

/** A clock and a timer queue the test moves by hand. */
function fakeTime() {
  const t = { now: 0, timers: [] as { at: number; fn: () => void; live: boolean }[] };
  return {
    now: () => t.now,
    setTimer: (fn: () => void, ms: number) => {
      const timer = { at: t.now + ms, fn, live: true };
      t.timers.push(timer);
      return () => void (timer.live = false);
    },
    /** Moves the clock to `ms`, running the timers due on the way. */
    advance(ms: number): void {
      t.now = ms;
      for (;;) {
        const due = t.timers.filter((x) => x.live && x.at <= ms).sort((a, b) => a.at - b.at)[0];
        if (!due) return;
        due.live = false;
        due.fn();
      }
    },
    live: () => t.timers.filter((x) => x.live).length,
  };
}

const shown = (lines: Line[]): string[] => lines.map((l) => `${l.level} ${l.msg} ${String(l['endpoint'])}` + (l.msg === 'endpoint flapping' ? ` ${String(l['ejections'])}/${String(l['revivals'])} ${String(l['state'])}` : ''));

describe('TransitionLog', () => {
  it('a single ejection and its revival are logged as they happen, with no summary', () => {
    const lines: Line[] = [];
    const time = fakeTime();
    const tl = new TransitionLog({ log: recorder(lines), now: time.now, setTimer: time.setTimer, windowMs: 60_000 });
    tl.ejected('10.0.0.1:80', 5);
    time.advance(59_000);
    tl.revived('10.0.0.1:80');
    time.advance(120_000);
    assert.deepEqual(shown(lines), ['warn endpoint ejected 10.0.0.1:80', 'info endpoint revived 10.0.0.1:80']);
    assert.equal(lines[0]!['failures'], 5);
    assert.equal(time.live(), 0);
  });

  it('1,000 ejected/revived pairs of one endpoint in a window: 2 lines, then one summary at its end; another endpoint has its own window', () => {
    const lines: Line[] = [];
    const time = fakeTime();
    const tl = new TransitionLog({ log: recorder(lines), now: time.now, setTimer: time.setTimer, windowMs: 60_000 });
    for (let i = 0; i < 1000; i++) {
      time.advance(i * 10);
      tl.ejected('10.0.0.1:80', 5);
      tl.revived('10.0.0.1:80');
    }
    tl.ejected('10.0.0.2:80', 5);
    tl.ejected('10.0.0.1:80', 5); // ends ejected
    assert.deepEqual(shown(lines), ['warn endpoint ejected 10.0.0.1:80', 'info endpoint revived 10.0.0.1:80', 'warn endpoint ejected 10.0.0.2:80']);
    time.advance(59_999);
    assert.equal(lines.length, 3, 'nothing before the window ends');
    time.advance(60_000);
    assert.deepEqual(shown(lines.slice(3)), ['warn endpoint flapping 10.0.0.1:80 1001/1000 ejected']);
    assert.equal(lines[3]!['windowSecs'], 60);
    // 10.0.0.2 had one transition: its window ends without a summary.
    time.advance(200_000);
    assert.equal(lines.length, 4);
    assert.equal(time.live(), 0, 'no timer once every window is over');
    // A new window: the next transition is logged again.
    tl.revived('10.0.0.1:80');
    assert.deepEqual(shown(lines.slice(4)), ['info endpoint revived 10.0.0.1:80']);
  });

  it('close() writes the summaries due, cancels its timer, and logs later transitions one by one', () => {
    const lines: Line[] = [];
    const time = fakeTime();
    const tl = new TransitionLog({ log: recorder(lines), now: time.now, setTimer: time.setTimer, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      tl.ejected('[::1]:80', 1);
      tl.revived('[::1]:80');
    }
    assert.equal(time.live(), 1);
    tl.close();
    assert.equal(time.live(), 0);
    assert.deepEqual(shown(lines), ['warn endpoint ejected [::1]:80', 'info endpoint revived [::1]:80', 'warn endpoint flapping [::1]:80 3/3 available']);
    tl.ejected('[::1]:80', 1); // a lease's last report after the destination closed
    assert.equal(lines.length, 4);
    assert.equal(time.live(), 0);
  });

  it('a window whose timer is late ends at the next transition, which opens a new one', () => {
    const lines: Line[] = [];
    const time = fakeTime();
    const tl = new TransitionLog({ log: recorder(lines), now: time.now, setTimer: () => () => {}, windowMs: 1000 }); // timers never fire
    tl.ejected('a:1', 1);
    tl.revived('a:1');
    tl.ejected('a:1', 1);
    time.advance(1000);
    tl.revived('a:1');
    assert.deepEqual(shown(lines), ['warn endpoint ejected a:1', 'info endpoint revived a:1', 'warn endpoint flapping a:1 2/1 ejected', 'info endpoint revived a:1']);
  });
});
