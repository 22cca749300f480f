/**
 * Links from chat answers to the web door's job pages. The chat doors know only this interface (the kit owns it,
 * so no door imports another); `adapters/serve.ts` hands them the web door's implementation when
 * `web.publicUrl` is set, and nothing otherwise, in which case they answer exactly as without a web door.
 */
import type { EnhanceResult, Job } from '../../src/index.js';

export interface ResultLinks {
  /**
   * Keeps a completed job's input and outputs for its page, as a web job's are (for `web.keepFor`, within
   * `web.keepBytes`), and returns the page's full address, signed and valid as long as they are kept. Call it in
   * `deliver`, before answering: the queue forgets a job's files once it is delivered. Idempotent: a delivery
   * tried again gets the same address.
   *
   * @example
   * const url = await links.keep(job, outcome.result); // 'https://enhance.example.org/job/mc0k2x9ab1f3e2d?e=…&s=…'
   */
  keep(job: Job, result: EnhanceResult): Promise<string>;
}
