/**
 * The start-up probe's own process (`probeInChild`, probe.ts): one `probeSpeed` on the threads named by the first
 * argument, its result as JSON on stdout.
 */
import { probeSpeed } from './probe.js';

const threads = Number(process.argv[2]);
process.stdout.write(`${JSON.stringify(await probeSpeed(Number.isInteger(threads) && threads > 0 ? threads : 1))}\n`);
