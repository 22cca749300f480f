/**
 * glibc malloc settings for the engine's process. onnxruntime (arena off) allocates a fresh buffer for every
 * layer's output; by default glibc hands buffers over 128 kB to mmap and returns them on free, so every layer
 * page-faults its output in again: a first x4plus run of a 256x256 window took 10.9 s instead of 7.4 s.
 * Serving them from the heap and keeping freed memory there removes that, at equal peak memory.
 *
 * One arena: the service runs the engine on a worker thread (src/engine/engine-thread.ts), and glibc gives
 * such a thread an arena built of 64 MB heaps, which cannot hold a larger buffer; those went to mmap after
 * all, and every x4plus window at 128x128 faulted 55,000 pages in again. The main arena grows as needed.
 *
 * glibc reads these only at process start, so launchers re-exec node with them (see bin/enhancer.js).
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(512 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(4 * 1024 * 1024 * 1024),
  MALLOC_ARENA_MAX: '1',
};

/** True when this process started with the settings (or is not on glibc, where they mean nothing). */
export function mallocTuned(): boolean {
  if (process.platform !== 'linux') return true;
  return Object.entries(MALLOC_ENV).every(([k, v]) => process.env[k] === v);
}
