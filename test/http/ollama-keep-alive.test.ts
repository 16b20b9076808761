import { describe, expect, it } from 'vitest';
import { parseKeepAlive } from '../../src/http/protocols/ollama.ts';

describe("Ollama's keep_alive", () => {
  it('reads seconds and Go durations into milliseconds', () => {
    expect(parseKeepAlive(undefined)).toBeUndefined();
    expect(parseKeepAlive(0)).toBe(0);
    expect(parseKeepAlive(30)).toBe(30_000);
    expect(parseKeepAlive('-1')).toBe(-1000);
    expect(parseKeepAlive('5m')).toBe(300_000);
    expect(parseKeepAlive('1h30m')).toBe(5_400_000);
    expect(parseKeepAlive('300ms')).toBe(300);
    expect(parseKeepAlive('-5m')).toBe(-300_000);
  });

  it('refuses anything else with 400', () => {
    for (const value of ['soon', '5 minutes', '', {}, true]) expect(() => parseKeepAlive(value)).toThrow(/keep_alive must be/);
  });
});
