import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project folder (the one holding package.json), whether running from src/ or from dist/src/. */
export const projectRoot = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const parts = here.split(path.sep);
  const at = parts.lastIndexOf('src');
  const root = parts.slice(0, at).join(path.sep) || path.sep;
  return path.basename(root) === 'dist' ? path.dirname(root) : root;
})();

/**
 * models/ in the project: where prepared models and their manifest live unless the config says otherwise
 * (`models`, `ENHANCER_MODELS`), which every caller is handed as a parameter.
 */
export const DEFAULT_MODELS_DIR = path.join(projectRoot, 'models');
