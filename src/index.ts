/**
 * The core's public face: everything a front door (adapters/) and the composition root may use, in one place,
 * so that a door imports `../../src/index.js` and never a deep path. What is not here is the core's own
 * business. The layers below, top to bottom: service (start-up, doors' port), pipeline, queue, engine and
 * imaging, then config, i18n, errors and the shared types.
 */

// The one request type and result type, and a job's life.
export type {
  EarlyPreview,
  EnhanceOptions,
  EnhanceProgress,
  EnhanceRequest,
  EnhanceResult,
  ImageSize,
  Job,
  OutputFormat,
  JobState,
  OutputKind,
  Region,
  ReplyTo,
} from './types.js';

// Errors: a person's reason, and how any thrown value is said.
export { EnhanceError, OperatorError, plainText, reasonOf, reasonTextOf, withoutPaths, type EnhanceErrorKind } from './errors.js';

// Languages.
export {
  catalogue,
  DEFAULT_LOCALE,
  formatDuration,
  formatSize,
  hasText,
  languageName,
  LOCALES,
  matchLocale,
  resolveLocale,
  say,
  sentence,
  translator,
  type Languages,
  type Locale,
  type Text,
  type TextValue,
} from './i18n/i18n.js';

// The queue as a door sees it.
export { PermanentDeliveryError, type EnhanceQueue, type JobStatus, type Outcome, type QueueEvents, type QueueListener } from './queue/queue.js';
export { JOB_ID, newJobId } from './queue/spool.js';
export { DiskFullError } from './disk-space.js';

// The door's port and the service.
export { checkDoors, doorHealth, type Door, type DoorFactory, type JobOf } from './service/door.js';
export { roleProblem, ROLES, startService, StartStopped, type Role, type Service } from './service/service.js';
export { DataFolderLocked, lockDataFolder, type DataLock } from './service/lock.js';
export { installLastResort } from './service/last-resort.js';

// Config sections of the doors.
export { ConfigError, defineSection, flag, folder, loadConfig, oneOf, requestOption, wholeNumber, type Config, type SectionValue } from './config.js';

// Output formats and sizes a door offers.
export { formatExtension, formatType, OUTPUT_FORMATS, SIZE_PRESETS } from './options.js';

// Pictures a door checks or fits before sending.
export { checkFileSize, INPUT_FORMATS, probeImage } from './imaging/input.js';
export { estimateJpegBytes, estimatePngBytes, fitToLimit, largestFittingScale, type FittedFile } from './imaging/fit.js';

// Files, models, logs and listeners.
export { cutToBytes, mkdirPrivate, SHARED_FILE, TEMP_NAME, writeAtomic } from './files.js';
export { readManifest, type ModelEntry } from './models/manifest.js';
export { projectRoot } from './paths.js';
export { createLogger, silentLogger, type Logger } from './log.js';
export { listenProblem } from './listen-problem.js';
