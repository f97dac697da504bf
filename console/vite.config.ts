import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Served by the gateway under /console: relative asset paths work at any mount point.
// `npm run dev -w @sluice/console` proxies the API to a gateway on :9400.
export default defineConfig({
  base: './',
  plugins: [svelte()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 400 },
  server: {
    proxy: { '/v1': { target: 'http://127.0.0.1:9400', ws: true } },
  },
});
