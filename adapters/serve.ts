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
import { startService } from '../src/service/service.js';
import { hotfolderSection } from './hotfolder/config.js';
import { HotFolder } from './hotfolder/hot-folder.js';

/** Every adapter's config section: `enhancer serve` reads and checks them all. */
export const SECTIONS = [hotfolderSection] as const;
export type ServeConfig = Config<typeof SECTIONS>;

/** The adapters the config turns on. */
export function createAdapters(config: ServeConfig, logger: Logger): Adapter[] {
  const adapters: Adapter[] = [];
  const hotfolder = config.sections.hotfolder;
  if (hotfolder.enabled) {
    adapters.push(
      new HotFolder({
        inbox: hotfolder.inbox,
        outbox: hotfolder.outbox,
        stateDir: path.join(config.data, 'hotfolder'),
        presets: hotfolder.presets,
        pdf: hotfolder.pdf,
        settleMs: hotfolder.settleMs,
        maxFileBytes: config.limits.maxFileBytes,
        logger,
      }),
    );
  }
  return adapters;
}

/** The models the enabled adapters' presets name, to be prepared before start. */
export function presetModels(config: ServeConfig): string[] {
  const hotfolder = config.sections.hotfolder;
  return hotfolder.enabled ? Object.values(hotfolder.presets).flatMap((p) => (p.model ? [p.model] : [])) : [];
}

/** Runs the service until a signal; returns the exit code. */
export async function serve(): Promise<number> {
  let config: ServeConfig;
  try {
    config = loadConfig({ sections: SECTIONS });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`error: ${error.message}\n`);
    return 2;
  }
  const log = createLogger(config.logLevel);
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
    service = await startService(config, adapters, log, presetModels(config));
  } catch (error) {
    signalled();
    process.stderr.write(`error: ${reasonOf(error)}\n`);
    log.flush?.();
    return 1;
  }
  const name = await signal;
  log.info({ signal: name }, 'shutting down (a second signal stops at once)');
  const force = () => process.exit(130);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  process.once('SIGHUP', force);
  await service.stop();
  return 0;
}
