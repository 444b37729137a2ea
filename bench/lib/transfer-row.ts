/** The row of a bulk-transfer yardstick (B2, B3): median GB/s of tensormem against a baseline measured in the same run. */
import { Row, gbps, times } from './report';
import { median } from './stats';

export interface TransferSamples {
  /** Seconds of each measured repetition, tensormem and baseline in the same order (pairs ran back to back). */
  tensormemSeconds: number[];
  baselineSeconds: number[];
  /** Server CPU seconds (all threads) per repetition. */
  tensormemCpu: number[];
  baselineCpu: number[];
  warmTensormemSeconds: number;
  warmBaselineSeconds: number;
}

export function transferRow(id: string, what: string, bytes: number, samples: TransferSamples, baselineName: string, target: { text: string; ratio: number }, values: Record<string, unknown>): Row {
  const measured = gbps(bytes, median(samples.tensormemSeconds));
  const baseline = gbps(bytes, median(samples.baselineSeconds));
  const ratio = measured / baseline;
  // Each rep's two transfers ran back to back: their ratio is the paired view, less sensitive to drift.
  const paired = median(samples.tensormemSeconds.map((seconds, i) => samples.baselineSeconds[i] / seconds));
  const cpuPerGB = (list: number[]) => (list.length > 0 ? median(list) / (bytes / 1e9) : NaN);
  return {
    id,
    what,
    measured: `${measured.toFixed(3)} GB/s`,
    baseline: `${baseline.toFixed(3)} GB/s ${baselineName}`,
    ratio: times(ratio),
    target: target.text,
    status: ratio >= target.ratio ? 'pass' : 'fail',
    values: {
      bytes,
      ...values,
      tensormemSeconds: samples.tensormemSeconds,
      baselineSeconds: samples.baselineSeconds,
      tensormemGBps: measured,
      baselineGBps: baseline,
      ratio,
      medianOfPairedRatios: paired,
      serverCpuSecondsPerGB: { tensormem: cpuPerGB(samples.tensormemCpu), baseline: cpuPerGB(samples.baselineCpu), tensormemSamples: samples.tensormemCpu, baselineSamples: samples.baselineCpu },
      warmup: {
        tensormemSeconds: samples.warmTensormemSeconds,
        baselineSeconds: samples.warmBaselineSeconds,
        tensormemGBps: gbps(bytes, samples.warmTensormemSeconds),
        baselineGBps: gbps(bytes, samples.warmBaselineSeconds),
      },
    },
  };
}
