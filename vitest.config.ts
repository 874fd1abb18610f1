import { defineConfig } from 'vitest/config';

// Namespace tests share the kernel: they run one file at a time (see test/netns/README.md).
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
