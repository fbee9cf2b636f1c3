import { parseByteSize, parsePrometheusPort } from '../../../src/config/units';

describe('config value parsers', () => {
  it('ports: 1..65535, 0 or off (any case) is off, anything else unusable', () => {
    expect(parsePrometheusPort('9400')).toBe(9400);
    expect(parsePrometheusPort(' 65535 ')).toBe(65535);
    expect(parsePrometheusPort('OFF')).toBe('off');
    expect(parsePrometheusPort(0)).toBe('off');
    expect(parsePrometheusPort('65536')).toBeUndefined();
    expect(parsePrometheusPort('-1')).toBeUndefined();
    expect(parsePrometheusPort('x')).toBeUndefined();
  });

  it('byte sizes: bytes or KiB/MiB/GiB (k/m/g), positive', () => {
    expect(parseByteSize('1024')).toBe(1024);
    expect(parseByteSize('512KiB')).toBe(512 * 1024);
    expect(parseByteSize('64 MiB')).toBe(64 * 1024 * 1024);
    expect(parseByteSize('1g')).toBe(1024 ** 3);
    expect(parseByteSize('0')).toBeUndefined();
    expect(parseByteSize('12 parsecs')).toBeUndefined();
  });
});
