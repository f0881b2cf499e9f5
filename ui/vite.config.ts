// Builds the UI into dist/, which the sextant binary embeds (crates/server/src/api/ui.rs).
// The output is deterministic: content-hashed names under assets/, no timestamps, no
// source maps, so CI can rebuild and compare it with the committed dist/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    assetsDir: 'assets',
    reportCompressedSize: false,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:16686' },
  },
});
