import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Worker threads load built JavaScript: rebuild dist/ when a source is newer.
    globalSetup: ['test/support/build-worker.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    allowOnly: false,
  },
});
