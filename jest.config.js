// Tests in layers (docs/testing.md): unit (no privileges, fast) and integration (root, real kernel,
// real Collector, real services). `make test` runs both.
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
module.exports = {
  // Integration tests start real processes (Collector, services, the agent): generous per-test budget.
  testTimeout: 120_000,
  // tsc copies package.json into dist/ for JSON imports: keep jest away from the build output.
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  projects: [
    {
      // Hermetic: no clang, no Go, no built objects; the tree mirrors src/ (test/unit/<path in src>).
      displayName: 'unit',
      modulePathIgnorePatterns: ['<rootDir>/dist/'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      // Unprivileged too, but on built artefacts: the BPF objects (make bpf) and Go fixture binaries.
      displayName: 'unit-built',
      modulePathIgnorePatterns: ['<rootDir>/dist/'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/unit-built/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      modulePathIgnorePatterns: ['<rootDir>/dist/'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/bpf/**/*.test.ts'],
    },
    {
      // Runs inside a lockdown-free guest kernel (make test-vm -> test/vm/run), not on the host.
      displayName: 'vm',
      modulePathIgnorePatterns: ['<rootDir>/dist/'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/vm-suite/**/*.test.ts'],
    },
  ],
};
