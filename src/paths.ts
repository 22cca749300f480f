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

/** Where prepared models and their manifest live: `ENHANCER_MODELS`, else models/ in the project. */
export function modelsDir(): string {
  return process.env.ENHANCER_MODELS ? path.resolve(process.env.ENHANCER_MODELS) : path.join(projectRoot, 'models');
}
