// Bundles the web page with esbuild from npm packages (no CDN): src/main.ts and the CSS it
// imports become dist/assets/app-<hash>.{js,css}, and dist/index.html names them. Content-hashed
// names let server/routes/web-page.ts cache assets for a year. Run by `npm run build:web`, which
// prestart and pretest run, and by the browser test before it starts.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function buildWebPage(outDir = path.join(here, 'dist')): Promise<{ js: string; css: string }> {
  const staging = `${outDir}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { app: path.join(here, 'src/main.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    outdir: path.join(staging, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    loader: { '.svg': 'dataurl', '.png': 'dataurl', '.woff2': 'dataurl' },
    define: { 'process.env.NODE_ENV': '"production"' },
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
  const js = outputs.find((f) => /^app-\w+\.js$/.test(f));
  const css = outputs.find((f) => /^app-\w+\.css$/.test(f));
  if (!js || !css) throw new Error(`esbuild wrote no app bundle: ${outputs.join(', ')}`);
  const html = (await readFile(path.join(here, 'index.html'), 'utf8')).replace('%APP_JS%', `/assets/${js}`).replace('%APP_CSS%', `/assets/${css}`);
  await writeFile(path.join(staging, 'index.html'), html);
  // Swapped in whole, so a running server never serves an index.html naming missing assets.
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.dirname(outDir), { recursive: true });
  await rename(staging, outDir);
  return { js, css };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { js, css } = await buildWebPage();
  console.error(`web page built: clients/web/dist (assets/${js}, assets/${css})`);
}
