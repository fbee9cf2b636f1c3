/** Where real Go builds (static, cgo, PIE) keep g relative to the thread pointer (src/discovery/go/tls.ts). */
import { withElf } from '../../../../src/discovery/go/elf';
import { goTlsOffset } from '../../../../src/discovery/go/tls';
import { buildFixture, needGo } from '../../../helpers/go-build';

// Builds Go fixtures (first run: compile); cached afterwards.
jest.setTimeout(600_000);

describe('goTlsOffset on real builds', () => {
  const goIt = needGo() ? it : it.skip;
  goIt.each([
    ['static (CGO_ENABLED=0)', {}],
    ['PIE', { pie: true }],
    ['external link (cgo)', { external: true }],
  ])('real build, %s: g at fs-8 (checked at run time by test/integration/go-server-lean)', (_name, opts) => {
    const bin = buildFixture('httpapp', { toolchain: 'local', ...opts });
    const r = withElf(bin, (elf) => goTlsOffset(elf));
    expect(r).toMatchObject({ ok: true, offset: -8 });
  });
});
