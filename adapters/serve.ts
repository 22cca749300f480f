/**
 * `enhancer serve` (`npm start`): the composition root. Loads the config, builds the enabled adapters, starts
 * the service and stops it cleanly on SIGINT or SIGTERM. It lives beside the adapters because the core in src/
 * never imports one.
 */
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from '../src/config.js';
import { reasonOf } from '../src/errors.js';
import { createLogger, type Logger } from '../src/log.js';
import type { Adapter } from '../src/service/adapter.js';
import { DataFolderLocked, lockDataFolder, type DataLock } from '../src/service/lock.js';
import { startService } from '../src/service/service.js';
import { HotFolder } from './hotfolder/hot-folder.js';

/** The adapters the config turns on. */
export function createAdapters(config: Config, logger: Logger): Adapter[] {
  const adapters: Adapter[] = [];
  if (config.hotfolder.enabled) {
    adapters.push(
      new HotFolder({
        inbox: config.inbox,
        outbox: config.outbox,
        stateDir: path.join(config.data, 'hotfolder'),
        presets: config.hotfolder.presets,
        pdf: config.hotfolder.pdf,
        settleMs: config.hotfolder.settleMs,
        maxFileBytes: config.limits.maxFileBytes,
        logger,
      }),
    );
  }
  return adapters;
}

/** Runs the service until a signal; returns the exit code. */
export async function serve(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`error: ${error.message}\n`);
    return 2;
  }
  const log = createLogger(config.logLevel);

  // One service per data folder, taken before anything reads the spool or watches the inbox.
  let lock: DataLock;
  try {
    lock = await lockDataFolder(config.data);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    process.stderr.write(`error: ${error instanceof DataFolderLocked ? error.message : `cannot lock the data folder ${config.data} (${why})`}\n`);
    return 1;
  }
  const adapters = createAdapters(config, log);
  if (adapters.length === 0) log.warn('every front door is turned off: jobs left in the spool run, nothing new comes in');

  // Signals are caught from the start, so one that arrives while models load still stops cleanly.
  let signalled: () => void = () => {};
  const signal = new Promise<string>((resolve) => {
    const on = (name: string) => () => resolve(name);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
    process.once('SIGHUP', on('SIGHUP'));
    signalled = () => resolve('start-up failed');
  });

  let service;
  try {
    service = await startService(config, adapters, log);
  } catch (error) {
    signalled();
    process.stderr.write(`error: ${reasonOf(error)}\n`);
    log.flush?.();
    await lock.release();
    return 1;
  }
  const name = await signal;
  log.info({ signal: name }, 'shutting down (a second signal stops at once)');
  const force = () => process.exit(130);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  process.once('SIGHUP', force);
  await service.stop();
  await lock.release();
  return 0;
}
