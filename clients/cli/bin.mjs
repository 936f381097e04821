#!/usr/bin/env node
// npm bin entry (`stream-line …` once installed with `npm install -g`, `npx stream-line …` in a
// clone): runs the TypeScript CLI through tsx, a dependency of the package installed with it, so
// neither a clone nor an installed package needs a build step.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
