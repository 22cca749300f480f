/**
 * glibc malloc settings for the engine's process. onnxruntime (arena off) allocates a fresh buffer for every
 * layer's output; by default glibc hands buffers over 128 kB to mmap and returns them on free, so every layer
 * page-faults its output in again: a first x4plus run of a 256x256 window took 10.9 s instead of 7.4 s.
 * Serving them from the heap and keeping freed memory there removes that. Measured again in the engine's child
 * process (src/engine/engine-process.ts forks it with these), a first 256x256 x4plus window, three fresh
 * children each, interleaved, on a 2-core machine loaded far past its cores by other work (load average 11-15):
 * 161-232 s without them, 67-69 s with them, at a peak of 1.07-1.13 GB against 0.81-0.90 GB.
 *
 * One arena was needed while the engine ran on a worker thread: glibc gave that thread an arena of 64 MB heaps,
 * which cannot hold a larger buffer, so those went to mmap after all. The child runs the engine on its main
 * thread, whose main arena grows as needed: without MALLOC_ARENA_MAX the same window took 58-73 s, no
 * different. It stays, as these are also what the launcher re-runs the service with (bin/enhancer.js).
 *
 * glibc reads these only at process start, so they go in a process's environment when it is started.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(512 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(4 * 1024 * 1024 * 1024),
  MALLOC_ARENA_MAX: '1',
};

/** True when an environment (the launcher's own, bin/enhancer.js) has the settings, or not on glibc, where they mean nothing. */
export function mallocTuned(env: NodeJS.ProcessEnv): boolean {
  if (process.platform !== 'linux') return true;
  return Object.entries(MALLOC_ENV).every(([k, v]) => env[k] === v);
}
