// Before any test: build dist/ (the CLI and service tests run bin/enhancer.js, which loads it) and prepare the
// models if they are not there yet, so `npm test` works straight after `npm ci`.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../src/paths.js';

export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(projectRoot, 'bin', 'enhancer.js'), 'models'], { stdio: 'inherit' });
}
