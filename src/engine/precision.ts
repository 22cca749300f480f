/**
 * Which precision runs: float32 everywhere, or the int8 variants of the models on CPUs whose VNNI
 * instructions make int8 dot products about four times the float32 rate (u8 x s8 products measured at 1.2-1.5
 * TOPS against 0.43-0.47 TFLOP/s float32 on the 2-core Zen 5 machines). Without VNNI, onnxruntime's AVX2 u8 x s8
 * kernel adds pairs of products in 16 bits, which can saturate: `auto` keeps float32 there.
 */
import fs from 'node:fs';
import { EnhanceError } from '../errors.js';
import type { Device, Precision, PrecisionChoice } from '../types.js';

/**
 * The CPU's feature flags, from /proc/cpuinfo (empty where there is none).
 *
 * @example cpuFlags().has('avx512_vnni')
 */
export function cpuFlags(cpuinfo = readCpuinfo()): Set<string> {
  const line = cpuinfo.split('\n').find((l) => /^flags\s*:/.test(l));
  return new Set(line ? line.split(':')[1].trim().split(/\s+/) : []);
}

/** Read once: the flags do not change while the process runs, and every job plans its run (twice) with them. */
let cpuinfo: string | undefined;

function readCpuinfo(): string {
  try {
    return (cpuinfo ??= fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return (cpuinfo = '');
  }
}

/** True where the CPU has AVX-512 VNNI or AVX-VNNI. */
export const hasVnni = (flags: Set<string>): boolean => flags.has('avx512_vnni') || flags.has('avx_vnni');

/**
 * Resolves a precision choice for the device that will run: `auto` is int8 only on a CPU with VNNI; int8 on a
 * GPU is refused (onnxruntime's CUDA provider runs these QDQ graphs no faster than float32).
 *
 * @example resolvePrecision('auto', 'cpu', new Set(['avx512_vnni'])) // 'int8'
 */
export function resolvePrecision(choice: PrecisionChoice, device: Device, flags: Set<string> = cpuFlags()): Precision {
  if (choice === 'fp32') return 'fp32';
  if (device === 'cuda') {
    if (choice === 'int8') throw new EnhanceError('precision int8 runs on the CPU only: use --device cpu, or precision fp32 or auto on a GPU', 'options');
    return 'fp32';
  }
  return choice === 'int8' || hasVnni(flags) ? 'int8' : 'fp32';
}
