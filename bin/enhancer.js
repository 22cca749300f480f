#!/usr/bin/env node
// Launcher for the `enhancer` CLI (src/cli) and the service (`enhancer serve`, adapters/serve.ts). It re-runs
// node once with the malloc settings of src/malloc.ts, which glibc only reads at start-up and which make the
// first inference as fast as later ones; signals are passed on, so stopping the launcher stops the service.
// A SIGKILL cannot be passed on: the IPC channel to the child closes when the launcher dies, however it dies,
// and the service stops on that as on SIGTERM (adapters/serve.ts). Without it a killed launcher left the
// service running with init as its parent.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MALLOC_ENV, mallocTuned } from '../dist/src/malloc.js';

const args = process.argv.slice(2);
if (!mallocTuned(process.env)) {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...MALLOC_ENV },
    // Its own process group: a Ctrl-C reaches it once, through the line below, not twice.
    detached: true,
  });
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(name, () => child.kill(name));
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
} else if (args[0] === 'serve') {
  const { serve } = await import('../dist/adapters/serve.js');
  process.exitCode = await serve(args.slice(1));
} else {
  const { main } = await import('../dist/src/cli/main.js');
  process.exitCode = await main(args);
}
