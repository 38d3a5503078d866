import { defineConfig } from 'vite';

// The page is served by the daemon from the berth binary (crates/dashboard/build.rs embeds
// dist/); hashed file names let the server mark them immutable.
export default defineConfig({
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 800,
    modulePreload: { polyfill: false },
  },
});
