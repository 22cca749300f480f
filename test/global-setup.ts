// The CLI tests run bin/enhancer.js, which loads the compiled dist/: build it once before any test.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
