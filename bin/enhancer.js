#!/usr/bin/env node
// Launcher for the `enhancer` CLI (src/cli). It re-runs node once with the malloc settings of src/malloc.ts,
// which glibc only reads at start-up and which make the first inference as fast as later ones.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MALLOC_ENV, mallocTuned } from '../dist/src/malloc.js';

if (!mallocTuned()) {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...MALLOC_ENV },
  });
  if (child.signal) process.kill(process.pid, child.signal);
  process.exit(child.status ?? 1);
}
const { main } = await import('../dist/src/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
