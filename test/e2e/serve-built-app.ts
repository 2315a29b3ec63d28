/**
 * Before the end-to-end tests: build the app exactly as `npm start` does and serve the build
 * with Vite's preview server (cross-origin isolation headers included) on a free loopback port.
 */
import { build, preview, type PreviewServer } from 'vite';
import type { TestProject } from 'vitest/node';
import { INSECURE_HOST } from './browser';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { writeRandomAdditionFolder, writeRandomGpt2Folder } from '../unit/fixtures';

/**
 * Model folders for the Inspect and Distill tests, served from another loopback port like any model host:
 * CORS allows the lab's page, and Cross-Origin-Resource-Policy lets the isolated page read them.
 */
async function serveModels(): Promise<{ server: Server; url: string; folders: Record<string, string> }> {
  const student = await writeRandomGpt2Folder(51);
  const teacher = await writeRandomGpt2Folder(52);
  // A tiny student and a larger teacher with the addition task's tokenizer, for training runs.
  const addStudent = await writeRandomAdditionFolder(53, { nLayer: 1, nEmbd: 16, nHead: 2, nInner: 64 });
  const addTeacher = await writeRandomAdditionFolder(54, { nLayer: 2, nEmbd: 32, nHead: 2, nInner: 128 });
  const roots: Record<string, string> = { student: student.dir, teacher: teacher.dir, 'add-student': addStudent.dir, 'add-teacher': addTeacher.dir };
  const server = createServer(async (req, res) => {
    const [, name, ...rest] = decodeURIComponent((req.url ?? '/').split('?')[0]).split('/');
    const root = roots[name];
    const file = root && normalize(join(root, ...rest));
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    if (!file || !file.startsWith(root + '/')) return void res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Length': body.length }).end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('model server did not bind a TCP port');
  return { server, url: `http://127.0.0.1:${address.port}/`, folders: roots };
}

let server: PreviewServer | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await build({ logLevel: 'warn' });
  server = await preview({ preview: { port: 0, host: '127.0.0.1', strictPort: false, allowedHosts: [INSECURE_HOST] }, logLevel: 'warn' });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('preview server did not bind a TCP port');
  project.provide('baseUrl', `http://127.0.0.1:${address.port}/`);
  const models = await serveModels();
  project.provide('modelsUrl', models.url);
  project.provide('studentDir', models.folders.student);
  project.provide('addStudentDir', models.folders['add-student']);
  return async () => {
    await server?.close();
    models.server.close();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    /**
     * Serves random GPT-2 folders at <modelsUrl>student/ and <modelsUrl>teacher/ (character
     * tokenizer), and at <modelsUrl>add-student/ and <modelsUrl>add-teacher/ (addition tokenizer).
     */
    modelsUrl: string;
    /** The same student folder on disk, for the folder picker. */
    studentDir: string;
    /** The add-student folder on disk (what a run started from). */
    addStudentDir: string;
  }
}
