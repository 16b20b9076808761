import { describe, expect, it } from 'vitest';
import { Metrics, Registry } from '../../src/http/metrics.ts';

describe('Prometheus registry', () => {
  it('renders counters, gauges and histograms in the text exposition format', () => {
    const registry = new Registry();
    const counter = registry.counter('jobs_total', 'Jobs\nrun.', ['kind']);
    counter.inc({ kind: 'a"b\\c' });
    counter.inc({ kind: 'a"b\\c' }, 2);
    registry.gauge('temperature', 'Heat.').set({}, -Infinity);
    const histogram = registry.histogram('latency_seconds', 'Latency.', ['route'], [0.1, 1]);
    histogram.observe({ route: '/x' }, 0.05);
    histogram.observe({ route: '/x' }, 0.5);
    histogram.observe({ route: '/x' }, 5);
    expect(registry.render()).toBe(
      [
        '# HELP jobs_total Jobs\\nrun.',
        '# TYPE jobs_total counter',
        'jobs_total{kind="a\\"b\\\\c"} 3',
        '# HELP temperature Heat.',
        '# TYPE temperature gauge',
        'temperature -Inf',
        '# HELP latency_seconds Latency.',
        '# TYPE latency_seconds histogram',
        'latency_seconds_bucket{route="/x",le="0.1"} 1',
        'latency_seconds_bucket{route="/x",le="1"} 2',
        'latency_seconds_bucket{route="/x",le="+Inf"} 3',
        'latency_seconds_sum{route="/x"} 5.55',
        'latency_seconds_count{route="/x"} 3',
        '',
      ].join('\n'),
    );
  });

  it('rejects invalid names, duplicates and decreasing counters', () => {
    const registry = new Registry();
    expect(() => registry.counter('bad-name', 'x')).toThrow(RangeError);
    expect(() => registry.histogram('h', 'x', ['le'], [1])).toThrow(RangeError);
    registry.gauge('g', 'x');
    expect(() => registry.gauge('g', 'x')).toThrow(RangeError);
    expect(() => registry.counter('c', 'x').inc({}, -1)).toThrow(RangeError);
  });

  it('records serving metrics per model and protocol', () => {
    const metrics = new Metrics();
    metrics.recordRequest({ tenant: 't1', model: 'm', version: '2' }, 'v2', 'ok', 0.003);
    metrics.recordRequest({ tenant: 't1', model: 'm', version: '2' }, 'tfserving', 'error', 0.2);
    metrics.queueDepth({ tenant: 't1', model: 'm', version: '2' }, 4);
    metrics.modelsLoaded(1, 2048);
    const text = metrics.render();
    expect(text).toContain('aiaas_inference_requests_total{tenant="t1",model="m",version="2",protocol="v2",outcome="ok"} 1');
    expect(text).toContain('aiaas_inference_requests_total{tenant="t1",model="m",version="2",protocol="tfserving",outcome="error"} 1');
    expect(text).toContain('aiaas_inference_duration_seconds_count{tenant="t1",model="m",protocol="v2"} 1');
    expect(text).toContain('aiaas_inference_queue_depth{tenant="t1",model="m",version="2"} 4');
    expect(text).toContain('aiaas_loaded_model_bytes 2048');
  });
});
