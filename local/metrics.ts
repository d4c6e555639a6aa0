import type { Metrics, MetricName, MetricUnit } from '../functions/agents/ports.js';

interface Series {
  name: MetricName;
  unit: MetricUnit;
  labels: Record<string, string>;
  count: number;
  sum: number;
}

const snake = (name: string) => name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * The service's metrics on one machine: the same names and dimensions the functions emit in EMF
 * when deployed, kept in memory and served at GET /metrics in Prometheus' text format (counts as
 * `agents_<name>_total`, durations as `agents_<name>_ms` summaries: `_sum` and `_count`).
 */
export class LocalMetrics implements Metrics {
  private readonly series = new Map<string, Series>();

  add(name: MetricName, value: number, unit: MetricUnit, dims: Record<string, string> = {}, finer?: Record<string, string>): void {
    // The finest set is kept: a coarser one is its sum.
    const labels = { ...dims, ...finer };
    const key = JSON.stringify([name, Object.entries(labels).sort()]);
    const s = this.series.get(key) ?? { name, unit, labels, count: 0, sum: 0 };
    s.count++;
    s.sum += value;
    this.series.set(key, s);
  }

  /** The sum of a metric's values over the series whose labels include `where` (tests, benchmarks). */
  total(name: MetricName, where: Record<string, string> = {}): number {
    let sum = 0;
    for (const s of this.series.values()) {
      if (s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.sum;
    }
    return sum;
  }

  prometheus(): string {
    const byName = new Map<string, Series[]>();
    for (const s of this.series.values()) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
    const out: string[] = [];
    for (const [name, all] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
      const ms = all[0]!.unit === 'Milliseconds';
      const metric = `agents_${snake(name)}${ms ? '_ms' : '_total'}`;
      out.push(`# TYPE ${metric} ${ms ? 'summary' : 'counter'}`);
      for (const s of all) {
        const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escape(v)}"`).join(',');
        const braces = labels ? `{${labels}}` : '';
        if (ms) out.push(`${metric}_sum${braces} ${s.sum}`, `${metric}_count${braces} ${s.count}`);
        else out.push(`${metric}${braces} ${s.sum}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
