#!/usr/bin/env node
// npm bin entry (`npx stream-line …`): runs the TypeScript CLI through tsx, a dependency of the
// project, so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
