#!/usr/bin/env node
// `npm start`: build the lab and serve the build on 127.0.0.1 (PORT, default 5173) with the
// cross-origin isolation headers from vite.config.ts. Works offline.
import { build, preview } from 'vite';

const port = Number(process.env.PORT ?? 5173);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number (0-65535), got '${process.env.PORT}'.`);
  process.exit(2);
}
console.log('Building the lab…');
await build({ logLevel: 'warn' });
try {
  const server = await preview({ preview: { port, strictPort: true, host: '127.0.0.1' }, logLevel: 'warn' });
  const address = server.httpServer.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}/`;
  console.log(`OPD Lab is served at ${url}`);
  console.log('Open it in a browser with WebGPU (see README: Browser requirements). Ctrl+C stops the server.');
} catch (e) {
  const busy = e && typeof e === 'object' && 'code' in e && e.code === 'EADDRINUSE';
  console.error(busy ? `Port ${port} is in use: stop what uses it, or run PORT=5174 npm start.` : String(e));
  process.exit(1);
}
