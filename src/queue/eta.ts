/**
 * A job's ETA, the same arithmetic for the in-process queue and the one on Redis: the accelerator time of every
 * job ahead (the running one's what is left of it, the tiles and what comes after them), then the job's own
 * (its model's load when the job before it ran another model, its early preview, its run), then its own render
 * (thumbnail, comparison, PDF), which overlaps the next job and so holds up nobody behind it.
 *
 * Before, an ETA counted each job's inference only, and the running job's remaining tiles: an x4fast job behind
 * two others was told about half of what it took (issue "rocket.jpg was told 'about 21 s' and took 34 s").
 */
import type { Costs, JobShape } from './throughput.js';

/** What is known of a running job, for the ETAs of it and of those behind it. Plain data (stored in Redis). */
export interface RunningJob {
  /** When it started, ms since the epoch. */
  since: number;
  /** The time left it last reported (its render included; see `enhanceProcessor`), and when (`at`). */
  etaMs?: number;
  at?: number;
  /** When the accelerator was free of it: from then on it is being finished (preview, comparison, PDF). */
  doneAt?: number;
}

/**
 * Milliseconds from `now` until each job of `line` (running ones first, then waiting ones in the order they run)
 * is done. One accelerator runs them one after another; a job's end waits for the one before it (the worker
 * announces jobs in the order they started), so the ETAs never decrease along the line.
 *
 * @example
 * lineEtas([{ shape: shapeOf(running), running: { since } }, { shape: shapeOf(waiting) }], throughput.costs(), Date.now()); // shapeOf: src/pipeline/shape.ts
 */
export function lineEtas(line: Array<{ shape: JobShape; running?: RunningJob }>, costs: Costs, now: number): number[] {
  /** Until the accelerator takes the next job. */
  let free = 0;
  /** The ETA of the job before: none ends before it. */
  let before = 0;
  /** The model the engine holds when the next job starts. */
  let model = costs.loaded;
  return line.map(({ shape, running }) => {
    const render = costs.render(shape);
    let eta: number;
    if (running?.doneAt !== undefined) {
      eta = Math.max(0, render - (now - running.doneAt));
    } else {
      let accelerator = costs.accelerator(shape, shape.model !== model);
      if (running) {
        const left = running.etaMs !== undefined ? running.etaMs - render - (now - (running.at ?? now)) : accelerator - (now - running.since);
        // Late is not done: at least what follows the last tile is still to come.
        accelerator = Math.max(costs.tail(shape), left);
      }
      free += accelerator;
      eta = free + render;
    }
    model = shape.model;
    before = Math.max(before, eta);
    return before;
  });
}
