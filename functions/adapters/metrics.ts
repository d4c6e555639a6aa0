import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Metrics, MetricName, MetricUnit } from '../agents/ports.js';
import { logger } from './logger.js';

/** The CloudWatch namespace of every metric the service emits (the dashboard and alarms read it). */
export const METRICS_NAMESPACE = 'AgentsLifecycle';
export const SERVICE = 'agents';

/**
 * Powertools Metrics in CloudWatch's embedded metric format: one log line per data point (no
 * PutMetricData call, no latency on the request), dimensions `service` plus the point's own.
 */
export class EmfMetrics implements Metrics {
  private readonly metrics = new PowertoolsMetrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE, logger });

  add(name: MetricName, value: number, unit: MetricUnit, dims: Record<string, string> = {}, finer?: Record<string, string>): void {
    const point = this.metrics.singleMetric();
    for (const [key, v] of Object.entries(dims)) point.addDimension(key, v);
    if (finer) point.addDimensions({ ...dims, ...finer });
    point.addMetric(name, unit, value);
  }
}
